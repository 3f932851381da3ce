import type { GgufFile } from "../formats/gguf.ts";
import { GGUF_TOKEN_TYPE, optionalId, spmVocabFromGguf, stringArray } from "./gguf_tokenizer.ts";
import type { Json } from "./hf_tokenizer.ts";
import {
  addedTokensOf,
  bosTemplate,
  type HfTokenizerFiles,
  spmToHfTokenizer,
} from "./llama2c_to_hf.ts";

const CONTRACTIONS = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
const GPT2_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

/**
 * The pre-tokenization of each supported `tokenizer.ggml.pre`, written as the Hugging Face
 * `tokenizer.json` of the model family writes it (llama.cpp compiles the same regexes in
 * `llm_tokenizer_bpe`). `ignoreMerges` is Llama 3's "a whole word in the vocabulary wins".
 */
const PRE_TOKENIZERS: Record<
  string,
  { pre: Json; normalizer: Json | null; ignoreMerges: boolean }
> = {
  "llama-bpe": {
    pre: splitThenBytes(
      `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
    ),
    normalizer: null,
    ignoreMerges: true,
  },
  qwen2: {
    pre: splitThenBytes(
      `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
    ),
    normalizer: { type: "NFC" },
    ignoreMerges: false,
  },
  smollm: {
    pre: {
      type: "Sequence",
      pretokenizers: [
        { type: "Digits", individual_digits: true },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      ],
    },
    normalizer: null,
    ignoreMerges: false,
  },
  "gpt-2": {
    pre: splitThenBytes(GPT2_SPLIT),
    normalizer: null,
    ignoreMerges: false,
  },
};
// Names llama.cpp gives the same pre-tokenizer type (llama_vocab::load).
PRE_TOKENIZERS["llama3"] = PRE_TOKENIZERS["llama-bpe"]!;
PRE_TOKENIZERS["llama-v3"] = PRE_TOKENIZERS["llama-bpe"]!;
PRE_TOKENIZERS["falcon3"] = PRE_TOKENIZERS["llama-bpe"]!;
PRE_TOKENIZERS["deepseek-r1-qwen"] = PRE_TOKENIZERS["qwen2"]!;
PRE_TOKENIZERS["starcoder"] = PRE_TOKENIZERS["smollm"]!;
PRE_TOKENIZERS["refact"] = PRE_TOKENIZERS["smollm"]!;
PRE_TOKENIZERS["gpt2"] = PRE_TOKENIZERS["gpt-2"]!;

/** Every `tokenizer.ggml.pre` that `bpeToHfTokenizer` writes. */
export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = Object.keys(PRE_TOKENIZERS);

function splitThenBytes(pattern: string): Json {
  return {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
}

/**
 * Writes a GGUF byte-level BPE vocabulary (`tokenizer.ggml.model = "gpt2"`: Llama 3, Qwen2,
 * SmolLM, GPT-2) as a Hugging Face tokenizer.
 *
 * @throws {TypeError} when the vocabulary is missing or its `tokenizer.ggml.pre` is not one of
 *   llama-bpe, qwen2, smollm, gpt-2 or a name llama.cpp gives one of them (llama3, llama-v3,
 *   falcon3, deepseek-r1-qwen, starcoder, refact, gpt2)
 */
export function bpeToHfTokenizer(
  gguf: Pick<GgufFile, "metadata">,
  name = "model.gguf",
): HfTokenizerFiles {
  const meta = gguf.metadata;
  const tokens = stringArray(meta.get("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens", name);
  const merges = stringArray(meta.get("tokenizer.ggml.merges"), "tokenizer.ggml.merges", name);
  const typesValue = meta.get("tokenizer.ggml.token_type");
  const types = Array.isArray(typesValue) && typesValue.length === tokens.length
    ? (typesValue as number[])
    : tokens.map(() => GGUF_TOKEN_TYPE.NORMAL);
  const preName = String(meta.get("tokenizer.ggml.pre") ?? "gpt-2");
  const pre = PRE_TOKENIZERS[preName];
  if (pre === undefined) {
    throw new TypeError(
      `GGUF file ${name}: pre-tokenizer '${preName}' is not supported (supported: ${
        Object.keys(PRE_TOKENIZERS).join(", ")
      })`,
    );
  }
  const bos = optionalId(meta.get("tokenizer.ggml.bos_token_id"), tokens.length);
  const eos = optionalId(meta.get("tokenizer.ggml.eos_token_id"), tokens.length);
  const addBos = meta.get("tokenizer.ggml.add_bos_token") === true && bos !== null;
  const bosText = bos === null ? null : tokens[bos]!;
  const template = addBos ? bosTemplate(bosText!, bos!) : null;
  const tokenizerJson: Json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokensOf(tokens, types, false),
    normalizer: pre.normalizer,
    pre_tokenizer: pre.pre,
    post_processor: template,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pre.ignoreMerges,
      vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
      merges: merges.map((m, i) => {
        const space = m.indexOf(" ", 1);
        if (space < 0) {
          throw new SyntaxError(`GGUF file ${name}: merge ${i} '${m}' has no separating space`);
        }
        return [m.slice(0, space), m.slice(space + 1)];
      }),
    },
  };
  const tokenizerConfig: Json = {
    add_bos_token: addBos,
    add_eos_token: false,
    bos_token: bosText,
    eos_token: eos === null ? null : tokens[eos]!,
    clean_up_tokenization_spaces: false,
    tokenizer_class: "PreTrainedTokenizerFast",
  };
  return { tokenizerJson, tokenizerConfig };
}

/**
 * The Hugging Face tokenizer files of a GGUF file's vocabulary: SentencePiece (`llama`) or
 * byte-level BPE (`gpt2`). The GGUF's chat template, when present, goes into the config.
 *
 * @throws {TypeError} for another tokenizer model or an unsupported pre-tokenizer
 */
export function ggufToHfTokenizer(
  gguf: Pick<GgufFile, "metadata">,
  name = "model.gguf",
): HfTokenizerFiles {
  const model = gguf.metadata.get("tokenizer.ggml.model");
  let files: HfTokenizerFiles;
  if (model === "llama") files = spmToHfTokenizer(spmVocabFromGguf(gguf, name));
  else if (model === "gpt2") files = bpeToHfTokenizer(gguf, name);
  else {
    throw new TypeError(
      `GGUF file ${name}: tokenizer model '${
        String(model)
      }' is not supported (supported: llama, gpt2)`,
    );
  }
  const template = gguf.metadata.get("tokenizer.chat_template");
  if (typeof template !== "string") return files;
  return { ...files, tokenizerConfig: { ...files.tokenizerConfig, chat_template: template } };
}
