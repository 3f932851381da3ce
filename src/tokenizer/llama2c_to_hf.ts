import { GGUF_TOKEN_TYPE, type SpmVocab } from "./gguf_tokenizer.ts";
import type { Json } from "./hf_tokenizer.ts";
import type { Llama2cTokenizer } from "./llama2c_tokenizer.ts";

const SPACE = "\u2581";
const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

/** The two files a Hugging Face tokenizer is made of. */
export interface HfTokenizerFiles {
  /** The content of `tokenizer.json`. */
  readonly tokenizerJson: Json;
  /** The content of `tokenizer_config.json`. */
  readonly tokenizerConfig: Json;
}

/**
 * Turns a llama2.c tokenizer into the SentencePiece vocabulary it was exported from: spaces
 * back to ▁, `\n<s>\n` and `\n</s>\n` back to `<s>` and `</s>`.
 */
function llama2cToSpmVocab(tokenizer: Llama2cTokenizer): SpmVocab {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const tokens: string[] = [];
  const types: number[] = [];
  tokenizer.pieces.forEach((piece, id) => {
    if (id <= 2) {
      tokens.push(["<unk>", "<s>", "</s>"][id]!);
      types.push(id === 0 ? GGUF_TOKEN_TYPE.UNKNOWN : GGUF_TOKEN_TYPE.CONTROL);
      return;
    }
    let text: string;
    try {
      text = decoder.decode(piece.bytes).replaceAll(" ", SPACE);
    } catch {
      tokens.push(`<invalid_utf8_${id}>`);
      types.push(GGUF_TOKEN_TYPE.UNUSED);
      return;
    }
    tokens.push(text);
    types.push(BYTE_PIECE.test(text) ? GGUF_TOKEN_TYPE.BYTE : GGUF_TOKEN_TYPE.NORMAL);
  });
  return {
    tokens,
    scores: tokenizer.pieces.map((p) => p.score),
    types,
    bos: 1,
    eos: [2],
    unk: 0,
    addBos: true,
    addSpacePrefix: true,
  };
}

/**
 * Converts a llama2.c `tokenizer.bin` into an equivalent Hugging Face tokenizer: BPE with byte
 * fallback, merges derived from the scores as `transformers`' LlamaConverter does.
 *
 * @example
 * ```ts ignore
 * const files = llama2cToHfTokenizer(parseLlama2cTokenizer(await Deno.readFile("tok512.bin")));
 * await Deno.writeTextFile("tokenizer.json", JSON.stringify(files.tokenizerJson));
 * ```
 */
export function llama2cToHfTokenizer(tokenizer: Llama2cTokenizer): HfTokenizerFiles {
  return spmToHfTokenizer(llama2cToSpmVocab(tokenizer));
}

/** Unique vocabulary keys: a repeated or empty piece gets a placeholder nobody can type. */
function uniquePieces(vocab: SpmVocab): string[] {
  const seen = new Set<string>();
  return vocab.tokens.map((token, id) => {
    const piece = token === "" || seen.has(token) ? `<unused_piece_${id}>` : token;
    seen.add(piece);
    return piece;
  });
}

function mergesOf(vocab: SpmVocab, pieces: readonly string[]): [string, string][] {
  const ids = new Map(pieces.map((p, id) => [p, id]));
  const merges: { left: string; right: string; score: number; order: number }[] = [];
  pieces.forEach((piece, id) => {
    const type = vocab.types[id];
    if (type !== GGUF_TOKEN_TYPE.NORMAL && type !== GGUF_TOKEN_TYPE.USER_DEFINED) return;
    const chars = Array.from(piece);
    const local: { left: string; right: string; l: number; r: number }[] = [];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join("");
      const right = chars.slice(i).join("");
      const l = ids.get(left);
      const r = ids.get(right);
      if (l !== undefined && r !== undefined) local.push({ left, right, l, r });
    }
    local.sort((a, b) => a.l - b.l || a.r - b.r);
    for (const m of local) {
      merges.push({
        left: m.left,
        right: m.right,
        score: vocab.scores[id] ?? 0,
        order: merges.length,
      });
    }
  });
  merges.sort((a, b) => b.score - a.score || a.order - b.order);
  return merges.map((m) => [m.left, m.right]);
}

/**
 * The `added_tokens` of a vocabulary: its control and unknown tokens (special) and its
 * user-defined ones, the latter matched after normalization when `normalizeUserDefined`.
 */
export function addedTokensOf(
  pieces: readonly string[],
  types: readonly number[],
  normalizeUserDefined: boolean,
): Json[] {
  return pieces.flatMap((content, id) => {
    const type = types[id];
    const special = type === GGUF_TOKEN_TYPE.CONTROL || type === GGUF_TOKEN_TYPE.UNKNOWN;
    if (!special && type !== GGUF_TOKEN_TYPE.USER_DEFINED) return [];
    return [{
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: !special && normalizeUserDefined,
      special,
    }];
  });
}

/** The post-processor that puts the BOS token `bos` (id `id`) before each sequence. */
export function bosTemplate(bos: string, id: number): Json {
  return {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [
      { SpecialToken: { id: bos, type_id: 0 } },
      { Sequence: { id: "A", type_id: 0 } },
      { SpecialToken: { id: bos, type_id: 1 } },
      { Sequence: { id: "B", type_id: 1 } },
    ],
    special_tokens: { [bos]: { id: bos, ids: [id], tokens: [bos] } },
  };
}

/**
 * Writes a SentencePiece BPE vocabulary as a Hugging Face `tokenizer.json` laid out like the
 * Llama ones (▁ normalizer, BPE with byte fallback, BOS template, ▁/byte-fallback decoder).
 */
export function spmToHfTokenizer(vocab: SpmVocab): HfTokenizerFiles {
  const pieces = uniquePieces(vocab);
  const name = (id: number | null) => (id === null ? null : pieces[id] ?? null);
  const bos = name(vocab.bos);
  const eos = name(vocab.eos[0] ?? null);
  const unk = name(vocab.unk);
  const addedTokens = addedTokensOf(pieces, vocab.types, true);
  const replace = { type: "Replace", pattern: { String: " " }, content: SPACE };
  const normalizer = vocab.addSpacePrefix
    ? { type: "Sequence", normalizers: [{ type: "Prepend", prepend: SPACE }, replace] }
    : replace;
  const decoders: Json[] = [
    { type: "Replace", pattern: { String: SPACE }, content: " " },
    { type: "ByteFallback" },
    { type: "Fuse" },
  ];
  if (vocab.addSpacePrefix) decoders.push({ type: "Strip", content: " ", start: 1, stop: 0 });
  const withBos = vocab.addBos && bos !== null;
  const postProcessor = withBos ? bosTemplate(bos, vocab.bos!) : null;
  const tokenizerJson: Json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer,
    pre_tokenizer: null,
    post_processor: postProcessor,
    decoder: { type: "Sequence", decoders },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(pieces.map((p, id) => [p, id])),
      merges: mergesOf(vocab, pieces),
    },
  };
  const tokenizerConfig: Json = {
    add_bos_token: withBos,
    add_eos_token: false,
    bos_token: bos,
    eos_token: eos,
    unk_token: unk,
    clean_up_tokenization_spaces: false,
    legacy: true,
    tokenizer_class: "LlamaTokenizer",
  };
  return { tokenizerJson, tokenizerConfig };
}
