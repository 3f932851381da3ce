import { ggufToHfTokenizer } from "../src/engine/gguf_to_hf.ts";
import { type HfTokenizerFiles, llama2cToHfTokenizer } from "../src/engine/llama2c_to_hf.ts";
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

/** Where the vocabulary comes from (for errors) and the context length to record. */
export interface TokenizerFileOptions {
  readonly name: string;
  readonly maxPositions: number;
}

/** `tokenizer.json` and `tokenizer_config.json` for a llama2.c `tokenizer.bin`. */
export function tokenizerFilesFromLlama2c(
  bytes: Uint8Array,
  options: TokenizerFileOptions,
): ExtraFile[] {
  const { name, maxPositions } = options;
  const hf = llama2cToHfTokenizer(parseLlama2cTokenizer(bytes, name));
  return files(hf, { model_max_length: maxPositions });
}

/**
 * `tokenizer.json` and `tokenizer_config.json` from a GGUF file's vocabulary (see
 * `ggufToHfTokenizer`: SentencePiece or byte-level BPE, with the GGUF's chat template).
 *
 * @throws {TypeError} for another tokenizer model or an unsupported pre-tokenizer
 */
export function tokenizerFilesFromGguf(
  gguf: GgufFile,
  options: TokenizerFileOptions,
): ExtraFile[] {
  const { name, maxPositions } = options;
  return files(ggufToHfTokenizer(gguf, name), { model_max_length: maxPositions });
}
