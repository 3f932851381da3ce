import { spmVocabFromGguf } from "../src/engine/gguf_tokenizer.ts";
import {
  type HfTokenizerFiles,
  llama2cToHfTokenizer,
  spmToHfTokenizer,
} from "../src/engine/llama2c_to_hf.ts";
import { parseLlama2cTokenizer } from "../src/engine/llama2c_tokenizer.ts";
import type { GgufFile } from "./gguf.ts";
import type { ExtraFile } from "./source.ts";

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n");
}

function files(hf: HfTokenizerFiles, extra: Record<string, unknown>): ExtraFile[] {
  return [
    { name: "tokenizer.json", bytes: json(hf.tokenizerJson) },
    { name: "tokenizer_config.json", bytes: json({ ...hf.tokenizerConfig, ...extra }) },
  ];
}

/** `tokenizer.json` and `tokenizer_config.json` for a llama2.c `tokenizer.bin`. */
export function tokenizerFilesFromLlama2c(
  bytes: Uint8Array,
  name: string,
  maxPositions: number,
): ExtraFile[] {
  const hf = llama2cToHfTokenizer(parseLlama2cTokenizer(bytes, name));
  return files(hf, { model_max_length: maxPositions });
}

/** `tokenizer.json` and `tokenizer_config.json` from a GGUF file's SentencePiece vocabulary. */
export function tokenizerFilesFromGguf(
  gguf: GgufFile,
  name: string,
  maxPositions: number,
): ExtraFile[] {
  const hf = spmToHfTokenizer(spmVocabFromGguf(gguf, name));
  const template = gguf.metadata.get("tokenizer.chat_template");
  return files(hf, {
    model_max_length: maxPositions,
    ...(typeof template === "string" ? { chat_template: template } : {}),
  });
}
