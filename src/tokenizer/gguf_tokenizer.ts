import type { GgufFile, GgufValue } from "../formats/gguf.ts";
import { concatBytes } from "../storage/bytes.ts";
import { binaryString } from "./llama2c_tokenizer.ts";
import { bytePiece, END_OF_GENERATION, type Tokenizer } from "./tokenizer.ts";
import { MergeQueue } from "./tokenizer_merge_queue.ts";

/** llama.cpp `llama_token_type` values stored in `tokenizer.ggml.token_type`. */
export const GGUF_TOKEN_TYPE = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

const SPACE = "\u2581";

/** A SentencePiece vocabulary as GGUF metadata stores it (`tokenizer.ggml.*`). */
export interface SpmVocab {
  /** Pieces by id, with spaces written as ▁ and bytes as `<0xXX>`. */
  readonly tokens: readonly string[];
  /** Merge priority of each piece (higher merges first). */
  readonly scores: readonly number[];
  /** `GGUF_TOKEN_TYPE` of each piece. */
  readonly types: readonly number[];
  /** Begin-of-sequence id, or null. */
  readonly bos: number | null;
  /** Ids that end a generation (eos, eot, eom). */
  readonly eos: readonly number[];
  /** Unknown-token id, or null. */
  readonly unk: number | null;
  /** Whether encoding prepends BOS by default. */
  readonly addBos: boolean;
  /** Whether a ▁ is prepended to the text (SentencePiece `add_dummy_prefix`). */
  readonly addSpacePrefix: boolean;
}

interface Symbol {
  start: number;
  n: number;
  prev: number;
  next: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

/**
 * The SentencePiece BPE tokenizer of a GGUF `llama` vocabulary, encoding as llama.cpp's
 * `llm_tokenizer_spm` does: spaces escaped to ▁, a ▁ prefix when `add_space_prefix`, bigram
 * merges by score, byte fallback `<0xXX>`, and user-defined tokens split out first.
 */
export class SpmTokenizer implements Tokenizer {
  /** Number of pieces. */
  readonly vocabSize: number;
  /** Begin-of-sequence id, or null. */
  readonly bos: number | null;
  /** Ids that end a generation. */
  readonly eos: readonly number[];
  /** The vocabulary it was built from. */
  readonly vocab: SpmVocab;
  #keys: string[];
  #ids = new Map<string, number>();
  #userDefined: { text: string; id: number }[] = [];
  /** User-defined and control tokens, longest first (what `parseSpecial` splits on). */
  #special: { text: string; id: number }[] = [];

  /** Indexes `vocab` for encoding. */
  constructor(vocab: SpmVocab) {
    this.vocab = vocab;
    this.vocabSize = vocab.tokens.length;
    this.bos = vocab.bos;
    this.eos = vocab.eos;
    const encoder = new TextEncoder();
    this.#keys = vocab.tokens.map((t) => binaryString(encoder.encode(t)));
    this.#keys.forEach((key, id) => this.#ids.set(key, id));
    const control: { text: string; id: number }[] = [];
    vocab.tokens.forEach((text, id) => {
      const type = vocab.types[id];
      if (text === "") return;
      if (type === GGUF_TOKEN_TYPE.USER_DEFINED) this.#userDefined.push({ text, id });
      if (type === GGUF_TOKEN_TYPE.CONTROL) control.push({ text, id });
    });
    const longestFirst = (a: { text: string }, b: { text: string }) =>
      b.text.length - a.text.length;
    this.#userDefined.sort(longestFirst);
    this.#special = [...this.#userDefined, ...control.sort(longestFirst)].sort(longestFirst);
  }

  /**
   * Encodes like llama.cpp `llama_tokenize(text, add_special = addBos, parse_special)`.
   * `parseSpecial` also splits control tokens (`<s>`) typed in the text.
   */
  encode(
    text: string,
    options: { readonly addBos?: boolean; readonly parseSpecial?: boolean } = {},
  ): number[] {
    const output: number[] = [];
    const addBos = (options.addBos ?? this.vocab.addBos) && this.bos !== null;
    if (addBos) output.push(this.bos!);
    if (text === "") return output;
    let prevSpecial = true;
    for (const fragment of this.#partition(text, options.parseSpecial ?? false)) {
      if (typeof fragment === "number") {
        output.push(fragment);
        prevSpecial = true;
        continue;
      }
      const raw = (this.vocab.addSpacePrefix && prevSpecial ? " " : "") + fragment;
      this.#tokenize(binaryString(new TextEncoder().encode(raw.replaceAll(" ", SPACE))), output);
      prevSpecial = false;
    }
    return output;
  }

  #partition(text: string, parseSpecial: boolean): (string | number)[] {
    let fragments: (string | number)[] = [text];
    const specials = parseSpecial ? this.#special : this.#userDefined;
    for (const special of specials) {
      const next: (string | number)[] = [];
      for (const fragment of fragments) {
        if (typeof fragment === "number") {
          next.push(fragment);
          continue;
        }
        const parts = fragment.split(special.text);
        parts.forEach((part, i) => {
          if (i > 0) next.push(special.id);
          if (part !== "") next.push(part);
        });
      }
      fragments = next;
    }
    return fragments;
  }

  #tokenize(text: string, output: number[]): void {
    const symbols: Symbol[] = [];
    for (let offset = 0; offset < text.length;) {
      const n = Math.min(utf8Length(text.charCodeAt(offset)), text.length - offset);
      symbols.push({
        start: offset,
        n,
        prev: symbols.length - 1,
        next: offset + n === text.length ? -1 : symbols.length + 1,
      });
      offset += n;
    }
    const queue = new MergeQueue<Bigram>();
    const revMerge = new Map<string, [number, number]>();
    const tryAdd = (left: number, right: number) => {
      if (left === -1 || right === -1) return;
      const l = symbols[left]!;
      const piece = text.substr(l.start, l.n + symbols[right]!.n);
      const id = this.#ids.get(piece);
      if (id === undefined) return;
      queue.push({ left, right, score: this.vocab.scores[id] ?? 0, size: piece.length });
      revMerge.set(piece, [left, right]);
    };
    for (let i = 1; i < symbols.length; i++) tryAdd(i - 1, i);
    while (queue.size > 0) {
      const bigram = queue.pop();
      const left = symbols[bigram.left]!;
      const right = symbols[bigram.right]!;
      if (left.n === 0 || right.n === 0 || left.n + right.n !== bigram.size) continue;
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next]!.prev = bigram.left;
      tryAdd(left.prev, bigram.left);
      tryAdd(bigram.left, left.next);
    }
    const resegment = (symbol: Symbol) => {
      const piece = text.substr(symbol.start, symbol.n);
      const id = this.#ids.get(piece);
      if (id !== undefined) {
        output.push(id);
        return;
      }
      const merge = revMerge.get(piece);
      if (merge === undefined) {
        for (let i = 0; i < piece.length; i++) output.push(this.#byteToken(piece.charCodeAt(i)));
        return;
      }
      resegment(symbols[merge[0]]!);
      resegment(symbols[merge[1]]!);
    };
    for (let i = symbols.length > 0 ? 0 : -1; i !== -1; i = symbols[i]!.next) {
      resegment(symbols[i]!);
    }
  }

  #byteToken(byte: number): number {
    const hex = byte.toString(16).toUpperCase().padStart(2, "0");
    return this.#ids.get(`<0x${hex}>`) ?? this.#ids.get(String.fromCharCode(byte)) ??
      this.vocab.unk ?? 0;
  }

  decode(ids: readonly number[]): string {
    const chunks = ids.map((id) => this.tokenBytes(id));
    let bytes = concatBytes(chunks);
    if (this.vocab.addSpacePrefix && bytes[0] === 0x20) bytes = bytes.subarray(1);
    return new TextDecoder().decode(bytes);
  }

  tokenBytes(id: number): Uint8Array {
    const text = this.vocab.tokens[id];
    const type = this.vocab.types[id] ?? GGUF_TOKEN_TYPE.NORMAL;
    if (text === undefined) return new Uint8Array(0);
    if (type === GGUF_TOKEN_TYPE.BYTE) {
      const byte = bytePiece(text);
      if (byte !== null) return Uint8Array.of(byte);
    }
    if (type === GGUF_TOKEN_TYPE.NORMAL) {
      return new TextEncoder().encode(text.replaceAll(SPACE, " "));
    }
    if (type === GGUF_TOKEN_TYPE.USER_DEFINED) return new TextEncoder().encode(text);
    return new Uint8Array(0);
  }
}

function utf8Length(firstByte: number): number {
  const high = firstByte >> 4;
  return high < 12 ? 1 : high < 14 ? 2 : high === 14 ? 3 : 4;
}

/** The GGUF metadata value `key` of file `name` as a list of strings. */
export function stringArray(value: GgufValue | undefined, key: string, name: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new TypeError(`GGUF file ${name}: '${key}' must be an array of strings`);
  }
  return value as string[];
}

function numberArray(
  value: GgufValue | undefined,
  key: string,
  name: string,
  length: number,
  fill: number,
): number[] {
  if (value === undefined) return new Array<number>(length).fill(fill);
  if (
    !Array.isArray(value) || value.length !== length || value.some((v) => typeof v !== "number")
  ) {
    throw new TypeError(`GGUF file ${name}: '${key}' must be an array of ${length} numbers`);
  }
  return value as number[];
}

/** A token id from GGUF metadata, or null when absent or outside the vocabulary. */
export function optionalId(value: GgufValue | undefined, vocabSize: number): number | null {
  return typeof value === "number" && value >= 0 && value < vocabSize ? value : null;
}

/**
 * Reads the SentencePiece vocabulary of a GGUF file's metadata.
 *
 * @throws {TypeError} when the vocabulary is missing or not a `llama` (SentencePiece) one
 */
export function spmVocabFromGguf(gguf: Pick<GgufFile, "metadata">, name = "model.gguf"): SpmVocab {
  const meta = gguf.metadata;
  const model = meta.get("tokenizer.ggml.model");
  if (model !== "llama") {
    throw new TypeError(
      `GGUF file ${name}: tokenizer model '${
        String(model)
      }' is not supported (only 'llama' SentencePiece vocabularies)`,
    );
  }
  const tokens = stringArray(meta.get("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens", name);
  const scores = numberArray(
    meta.get("tokenizer.ggml.scores"),
    "tokenizer.ggml.scores",
    name,
    tokens.length,
    0,
  );
  const types = numberArray(
    meta.get("tokenizer.ggml.token_type"),
    "tokenizer.ggml.token_type",
    name,
    tokens.length,
    GGUF_TOKEN_TYPE.NORMAL,
  );
  const bos = optionalId(meta.get("tokenizer.ggml.bos_token_id") ?? 1, tokens.length);
  const eos: number[] = [];
  for (const key of ["eos_token_id", "eot_token_id", "eom_token_id"]) {
    const id = optionalId(
      meta.get(`tokenizer.ggml.${key}`) ?? (key === "eos_token_id" ? 2 : -1),
      tokens.length,
    );
    if (id !== null && !eos.includes(id)) eos.push(id);
  }
  // Gemma's `<end_of_turn>` ends a turn whether or not the metadata names it.
  tokens.forEach((token, id) => {
    const special = types[id] === GGUF_TOKEN_TYPE.CONTROL ||
      types[id] === GGUF_TOKEN_TYPE.USER_DEFINED;
    if (special && END_OF_GENERATION.has(token) && !eos.includes(id)) eos.push(id);
  });
  const addBos = meta.get("tokenizer.ggml.add_bos_token");
  const addSpacePrefix = meta.get("tokenizer.ggml.add_space_prefix");
  return {
    tokens,
    scores,
    types,
    bos,
    eos,
    unk: optionalId(meta.get("tokenizer.ggml.unknown_token_id") ?? 0, tokens.length),
    addBos: typeof addBos === "boolean" ? addBos : true,
    addSpacePrefix: typeof addSpacePrefix === "boolean" ? addSpacePrefix : true,
  };
}

/** The tokenizer of a GGUF file's metadata (SentencePiece `llama` vocabularies). */
export function ggufTokenizer(gguf: Pick<GgufFile, "metadata">, name = "model.gguf"): SpmTokenizer {
  return new SpmTokenizer(spmVocabFromGguf(gguf, name));
}
