import type { Tokenizer } from "../tokenizer/tokenizer.ts";

/**
 * Turns a growing list of token ids into text deltas that never split a UTF-8
 * character: the ids are decoded over a sliding window, and text that ends in
 * U+FFFD (an incomplete multi-byte sequence) is held back until the next token
 * completes it.
 *
 * Given the prompt, the first window starts with its last tokens, so the first generated
 * token reads as it does after the prompt: decoders that drop the leading space of a text
 * (SentencePiece's `Strip`, a `Metaspace` with a prepended space) drop it from the prompt,
 * not from the completion. The concatenated deltas then equal
 * `decode(prompt + ids)` minus `decode(prompt)`; without a prompt, `decode(ids)`.
 */
export class IncrementalDetokenizer {
  readonly #tokenizer: Pick<Tokenizer, "decode">;
  readonly #ids: number[];
  /** Where the pushed ids start in `#ids` (after the prompt's context tokens). */
  readonly #start: number;
  #prefix = 0;
  #read: number;

  /**
   * A detokenizer whose text starts after `prompt` (its ids give the first tokens their context).
   */
  constructor(tokenizer: Pick<Tokenizer, "decode">, prompt: readonly number[] = []) {
    this.#tokenizer = tokenizer;
    this.#ids = contextOf(tokenizer, prompt);
    this.#start = this.#read = this.#ids.length;
  }

  /** All ids pushed so far. */
  get ids(): readonly number[] {
    return this.#ids.slice(this.#start);
  }

  /** Adds one token; returns the text that became stable (possibly ""). */
  push(id: number): string {
    this.#ids.push(id);
    const before = this.#decode(this.#prefix, this.#read);
    const after = this.#decode(this.#prefix, this.#ids.length);
    if (after.length <= before.length || after.endsWith("\uFFFD")) return "";
    this.#prefix = this.#read;
    this.#read = this.#ids.length;
    return after.startsWith(before)
      ? after.slice(before.length)
      : after.slice(commonPrefix(before, after));
  }

  /** Returns whatever is still held back (an incomplete character decodes to U+FFFD). */
  flush(): string {
    const before = this.#decode(this.#prefix, this.#read);
    const after = this.#decode(this.#prefix, this.#ids.length);
    this.#prefix = this.#read = this.#ids.length;
    return after.length > before.length ? after.slice(before.length) : "";
  }

  #decode(from: number, to: number): string {
    return from >= to ? "" : this.#tokenizer.decode(this.#ids.slice(from, to));
  }
}

/** Prompt tokens the first window starts with. */
const CONTEXT_TOKENS = 4;

/**
 * The last tokens of `prompt`, enough of them to decode to some text (special tokens decode to
 * nothing, and a window of them alone would leave the first generated token at the start).
 */
function contextOf(tokenizer: Pick<Tokenizer, "decode">, prompt: readonly number[]): number[] {
  let from = Math.max(0, prompt.length - CONTEXT_TOKENS);
  while (from > 0 && tokenizer.decode(prompt.slice(from)) === "") {
    from = Math.max(0, from - CONTEXT_TOKENS);
  }
  return prompt.slice(from);
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * Turns token ids into text through their bytes alone (`tokenBytes`), as UTF-8 decoded in a
 * stream: the text is exactly what a byte-level constraint checked, whatever the tokenizer's
 * own decoder would clean up.
 */
export class ByteDetokenizer {
  readonly #tokenizer: Pick<Tokenizer, "tokenBytes">;
  readonly #decoder = new TextDecoder();

  constructor(tokenizer: Pick<Tokenizer, "tokenBytes">) {
    this.#tokenizer = tokenizer;
  }

  /** Adds one token; returns the characters it completed (possibly ""). */
  push(id: number): string {
    return this.#decoder.decode(this.#tokenizer.tokenBytes(id), { stream: true });
  }

  /** Returns whatever is still held back (an incomplete character decodes to U+FFFD). */
  flush(): string {
    return this.#decoder.decode();
  }
}
