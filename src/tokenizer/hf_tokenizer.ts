import { Tokenizer as HfLibTokenizer } from "@huggingface/tokenizers";
import { bytePiece, END_OF_GENERATION, type Tokenizer } from "./tokenizer.ts";

/** A parsed JSON object. */
export type Json = Record<string, unknown>;

/**
 * A Hugging Face `tokenizer.json` (+ `tokenizer_config.json`, optionally
 * `generation_config.json`) behind Rill's tokenizer interface, run by `@huggingface/tokenizers`.
 */
export class HfTokenizer implements Tokenizer {
  /** Largest id (added tokens included) + 1. */
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: readonly number[];
  /** Whether `encode` prepends BOS when not told otherwise. */
  readonly addsBos: boolean;
  /** The `tokenizer_config.json` it was built with (holds `chat_template` when present). */
  readonly config: Json;
  #lib: HfLibTokenizer;
  #special = new Set<number>();
  #pieceBytes: (piece: string) => Uint8Array;
  #bytes = new Map<number, Uint8Array>();
  #byteFallback: boolean;

  /**
   * Builds the tokenizer from parsed files. The end ids are the config's `eos_token`, the
   * generation config's `eos_token_id` (one or a list), and the vocabulary's special
   * end-of-turn and end-of-text tokens (`<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`, ...).
   *
   * @param tokenizerJson the parsed `tokenizer.json`
   * @param config the parsed `tokenizer_config.json` ({} when absent)
   * @param generationConfig the parsed `generation_config.json`, whose `eos_token_id` adds stop ids
   * @throws {TypeError} when `tokenizerJson` is not a tokenizer.json object
   */
  constructor(tokenizerJson: unknown, config: unknown = {}, generationConfig: unknown = {}) {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson["model"])) {
      throw new TypeError("Expected a tokenizer.json object with a 'model' field");
    }
    this.config = isObject(config) ? config : {};
    this.#lib = new HfLibTokenizer(withRustDigits(tokenizerJson), this.config);
    let maxId = -1;
    for (const id of this.#lib.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    for (const [id, token] of this.#lib.get_added_tokens_decoder()) {
      if (token.special) this.#special.add(id);
    }
    const model = tokenizerJson["model"] as Json;
    this.#byteFallback = model["byte_fallback"] === true;
    this.#pieceBytes = usesByteLevel(tokenizerJson["decoder"])
      ? byteLevelBytes
      : metaspaceBytes(replacementOf(tokenizerJson));

    this.bos = this.#specialId(this.config["bos_token"]) ?? templateBos(tokenizerJson, this.#lib);
    const eos: number[] = [];
    const configEos = this.#specialId(this.config["eos_token"]);
    if (configEos !== null) eos.push(configEos);
    const generationEos = isObject(generationConfig) ? generationConfig["eos_token_id"] : undefined;
    for (const id of [generationEos].flat()) {
      if (typeof id === "number" && !eos.includes(id)) eos.push(id);
    }
    for (const [id, token] of this.#lib.get_added_tokens_decoder()) {
      if (token.special && END_OF_GENERATION.has(token.content) && !eos.includes(id)) eos.push(id);
    }
    this.eos = eos;
    const probe = this.#lib.encode("a", { add_special_tokens: true }).ids;
    const addBos = this.config["add_bos_token"];
    this.addsBos = typeof addBos === "boolean"
      ? addBos
      : this.bos !== null && probe[0] === this.bos;
  }

  #specialId(entry: unknown): number | null {
    const content = isObject(entry) ? entry["content"] : entry;
    if (typeof content !== "string") return null;
    return this.#lib.token_to_id(content) ?? null;
  }

  encode(text: string, options: { readonly addBos?: boolean } = {}): number[] {
    const addBos = options.addBos ?? this.addsBos;
    // Rust tokenizers produce no token for empty text; tokenizers.js would prepend ▁ to it.
    if (text === "") return addBos && this.bos !== null ? [this.bos] : [];
    const ids = [...this.#lib.encode(text, { add_special_tokens: addBos }).ids];
    if (addBos && this.bos !== null && ids[0] !== this.bos) ids.unshift(this.bos);
    return ids;
  }

  decode(ids: readonly number[]): string {
    // tokenizers.js throws on an empty list.
    if (ids.length === 0) return "";
    return this.#lib.decode([...ids], { skip_special_tokens: true });
  }

  /** The token's text as stored in the vocabulary (`▁Once`, `ĠWorld`, `<0x0A>`), or "". */
  piece(id: number): string {
    return this.#piece(id);
  }

  #piece(id: number): string {
    return this.#lib.id_to_token(id) ?? "";
  }

  tokenBytes(id: number): Uint8Array {
    let bytes = this.#bytes.get(id);
    if (bytes === undefined) {
      const piece = this.#piece(id);
      const byte = this.#byteFallback ? bytePiece(piece) : null;
      if (this.#special.has(id)) bytes = new Uint8Array(0);
      else if (byte !== null) bytes = Uint8Array.of(byte);
      else bytes = this.#pieceBytes(piece);
      this.#bytes.set(id, bytes);
    }
    return bytes;
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * `tokenizerJson` with each `Digits` pre-tokenizer written as the `Split` it is in the Rust
 * library, which splits at every `char::is_numeric` (`\p{N}`: `½`, `²`, `٣`); tokenizers.js
 * splits at ASCII digits only.
 */
function withRustDigits(tokenizerJson: Json): Json {
  const rewrite = (part: unknown): unknown => {
    if (Array.isArray(part)) return part.map(rewrite);
    if (!isObject(part)) return part;
    if (part["type"] === "Digits") {
      const pattern = part["individual_digits"] === true ? "\\p{N}" : "\\p{N}+";
      return { type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false };
    }
    const children = part["pretokenizers"];
    return Array.isArray(children) ? { ...part, pretokenizers: children.map(rewrite) } : part;
  };
  const pre = tokenizerJson["pre_tokenizer"];
  return isObject(pre) ? { ...tokenizerJson, pre_tokenizer: rewrite(pre) } : tokenizerJson;
}

function templateBos(tokenizerJson: Json, lib: HfLibTokenizer): number | null {
  const post = tokenizerJson["post_processor"];
  if (!isObject(post) || post["type"] !== "TemplateProcessing" || !Array.isArray(post["single"])) {
    return null;
  }
  const first: unknown = post["single"][0];
  if (!isObject(first) || !isObject(first["SpecialToken"])) return null;
  const name = first["SpecialToken"]["id"];
  return typeof name === "string" ? lib.token_to_id(name) ?? null : null;
}

function usesByteLevel(decoder: unknown): boolean {
  if (!isObject(decoder)) return false;
  if (decoder["type"] === "ByteLevel") return true;
  const children = decoder["decoders"];
  return Array.isArray(children) && children.some(usesByteLevel);
}

function replacementOf(tokenizerJson: Json): string {
  for (const part of [tokenizerJson["pre_tokenizer"], tokenizerJson["decoder"]]) {
    if (isObject(part) && typeof part["replacement"] === "string") return part["replacement"];
  }
  return "\u2581";
}

function metaspaceBytes(replacement: string): (piece: string) => Uint8Array {
  const encoder = new TextEncoder();
  return (piece) => encoder.encode(piece.replaceAll(replacement, " "));
}

let byteDecoder: Map<string, number> | undefined;

/** GPT-2's byte <-> printable character table, inverted. */
function byteLevelBytes(piece: string): Uint8Array {
  if (byteDecoder === undefined) {
    byteDecoder = new Map();
    let extra = 0;
    for (let b = 0; b < 256; b++) {
      const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      byteDecoder.set(String.fromCodePoint(printable ? b : 256 + extra++), b);
    }
  }
  const out: number[] = [];
  for (const ch of piece) {
    const b = byteDecoder.get(ch);
    if (b !== undefined) out.push(b);
    else out.push(...new TextEncoder().encode(ch));
  }
  return Uint8Array.from(out);
}
