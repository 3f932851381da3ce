import { spmVocabFromGguf } from "../src/engine/gguf_tokenizer.ts";
import {
  type HfTokenizerFiles,
  llama2cToHfTokenizer,
  spmToHfTokenizer,
} from "../src/engine/llama2c_to_hf.ts";
import { parseLlama2cTokenizer } from "../src/engine/llama2c_tokenizer.ts";
import type { GgufFile, GgufValue } from "./gguf.ts";
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
 * `tokenizer.json` and `tokenizer_config.json` from a GGUF file's vocabulary: SentencePiece
 * (`tokenizer.ggml.model` = `llama`) or byte-level BPE (`gpt2`, e.g. Llama 3, Qwen2, SmolLM).
 *
 * @throws {TypeError} for another tokenizer model
 */
export function tokenizerFilesFromGguf(
  gguf: GgufFile,
  options: TokenizerFileOptions,
): ExtraFile[] {
  const { name, maxPositions } = options;
  const model = gguf.metadata.get("tokenizer.ggml.model");
  const hf = model === "gpt2"
    ? bpeToHfTokenizer(gguf, name)
    : spmToHfTokenizer(spmVocabFromGguf(gguf, name));
  const template = gguf.metadata.get("tokenizer.chat_template");
  return files(hf, {
    model_max_length: maxPositions,
    ...(typeof template === "string" ? { chat_template: template } : {}),
  });
}

const CONTROL = 3;
const USER_DEFINED = 4;

/** Split regexes of llama.cpp's `tokenizer.ggml.pre` values, as the HF tokenizers spell them. */
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function byteLevel(useRegex: boolean): Record<string, unknown> {
  return { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: useRegex };
}

function preTokenizer(pre: unknown): Record<string, unknown> {
  const split = (regex: string) => ({
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false },
      byteLevel(false),
    ],
  });
  switch (pre) {
    case "llama3":
    case "llama-bpe":
    case "falcon3":
      return split(LLAMA3_SPLIT);
    case "qwen2":
    case "deepseek-r1-qwen":
      return split(QWEN2_SPLIT);
    case "smollm":
    case "starcoder":
    case "refact":
      return {
        type: "Sequence",
        pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel(true)],
      };
    default:
      return byteLevel(true);
  }
}

function strings(value: GgufValue | undefined, key: string, name: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new TypeError(`${name}: GGUF metadata '${key}' is not a list of strings`);
  }
  return value as string[];
}

/** A byte-level BPE vocabulary (`tokenizer.ggml.model` = `gpt2`) as HF tokenizer files. */
function bpeToHfTokenizer(gguf: GgufFile, name: string): HfTokenizerFiles {
  const meta = gguf.metadata;
  const tokens = strings(meta.get("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens", name);
  const merges = strings(meta.get("tokenizer.ggml.merges"), "tokenizer.ggml.merges", name);
  const types = meta.get("tokenizer.ggml.token_type");
  const typeOf = (id: number) => (Array.isArray(types) ? Number(types[id] ?? 1) : 1);
  const id = (key: string) => {
    const v = meta.get(`tokenizer.ggml.${key}`);
    return typeof v === "number" && v >= 0 && v < tokens.length ? v : null;
  };
  const bos = id("bos_token_id");
  const eos = id("eos_token_id");
  const addBos = meta.get("tokenizer.ggml.add_bos_token") === true && bos !== null;
  const addedTokens = tokens.flatMap((content, i) => {
    const type = typeOf(i);
    if (type !== CONTROL && type !== USER_DEFINED) return [];
    const special = type === CONTROL;
    return [{
      id: i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: !special,
      special,
    }];
  });
  const bosName = bos === null ? null : tokens[bos]!;
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: meta.get("tokenizer.ggml.pre") === "qwen2" ? { type: "NFC" } : null,
    pre_tokenizer: preTokenizer(meta.get("tokenizer.ggml.pre")),
    post_processor: addBos
      ? {
        type: "TemplateProcessing",
        single: [
          { SpecialToken: { id: bosName, type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
        ],
        pair: [
          { SpecialToken: { id: bosName, type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
          { SpecialToken: { id: bosName, type_id: 1 } },
          { Sequence: { id: "B", type_id: 1 } },
        ],
        special_tokens: { [bosName!]: { id: bosName, ids: [bos], tokens: [bosName] } },
      }
      : byteLevel(false),
    decoder: byteLevel(true),
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: meta.get("tokenizer.ggml.pre") === "llama-bpe",
      vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
      merges: merges.map((m) => {
        const space = m.indexOf(" ", 1);
        return [m.slice(0, space), m.slice(space + 1)];
      }),
    },
  };
  const tokenizerConfig = {
    add_bos_token: addBos,
    add_eos_token: false,
    bos_token: bosName,
    eos_token: eos === null ? null : tokens[eos]!,
    clean_up_tokenization_spaces: false,
    tokenizer_class: "PreTrainedTokenizerFast",
  };
  return { tokenizerJson, tokenizerConfig };
}
