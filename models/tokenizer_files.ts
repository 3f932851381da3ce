import type { HfTokenizerFiles } from "../src/tokenizer/llama2c_to_hf.ts";
import type { ExtraFile } from "./source.ts";

/** `value` as the indented JSON text of an archive member. */
export function jsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n");
}

/**
 * The `tokenizer.json` and `tokenizer_config.json` members of a converted tokenizer
 * (`ggufToHfTokenizer`, `llama2cToHfTokenizer`), the config recording the context length.
 */
export function tokenizerFiles(hf: HfTokenizerFiles, maxPositions: number): ExtraFile[] {
  return [
    { name: "tokenizer.json", bytes: jsonBytes(hf.tokenizerJson) },
    {
      name: "tokenizer_config.json",
      bytes: jsonBytes({ ...hf.tokenizerConfig, model_max_length: maxPositions }),
    },
  ];
}
