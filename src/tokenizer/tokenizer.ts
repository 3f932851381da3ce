/** Text <-> token ids, whatever file the vocabulary came from. */
export interface Tokenizer {
  /** Number of token ids: the largest id + 1. */
  readonly vocabSize: number;
  /** Begin-of-sequence id, or null when the model has none. */
  readonly bos: number | null;
  /** Ids that end a generation (eos, end-of-turn, ...). */
  readonly eos: readonly number[];
  /** Encodes `text`; `addBos` (default: the tokenizer's own convention) prepends BOS. */
  encode(text: string, options?: { readonly addBos?: boolean }): number[];
  /** Decodes ids to text, skipping special tokens such as BOS/EOS. */
  decode(ids: readonly number[]): string;
  /**
   * The raw bytes a token stands for (byte-fallback tokens give their byte), so that
   * text can be streamed without splitting a UTF-8 character across two deltas.
   */
  tokenBytes(id: number): Uint8Array;
  /** The token as the vocabulary writes it (names special tokens, which have no bytes). */
  piece?(id: number): string;
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** The byte a byte-fallback piece `<0xXX>` stands for, else null. */
export function bytePiece(piece: string): number | null {
  const m = BYTE_PIECE.exec(piece);
  return m === null ? null : parseInt(m[1]!, 16);
}

/**
 * Special tokens that end a generation wherever a vocabulary has them, whatever its configs
 * name (the end-of-turn and end-of-text tokens llama.cpp also stops at).
 */
export const END_OF_GENERATION: ReadonlySet<string> = new Set([
  "<|endoftext|>",
  "<|end_of_text|>",
  "<|im_end|>",
  "<|eot_id|>",
  "<|eom_id|>",
  "<|end|>",
  "<end_of_turn>",
  "<EOT>",
  "<\uFF5Cend\u2581of\u2581sentence\uFF5C>",
  // What fill-in-the-middle models (Qwen2.5-Coder, CodeGemma) write once the middle is done.
  "<|fim_pad|>",
  "<|file_sep|>",
  "<|repo_name|>",
  "<|file_separator|>",
]);
