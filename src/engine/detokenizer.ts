import type { Tokenizer } from "./tokenizer.ts";

/**
 * Turns a growing list of token ids into text deltas that never split a UTF-8
 * character: the ids are decoded over a sliding window, and text that ends in
 * U+FFFD (an incomplete multi-byte sequence) is held back until the next token
 * completes it. The concatenated deltas equal `tokenizer.decode(allIds)`.
 */
export class IncrementalDetokenizer {
  readonly #tokenizer: Pick<Tokenizer, "decode">;
  readonly #ids: number[] = [];
  #prefix = 0;
  #read = 0;

  constructor(tokenizer: Pick<Tokenizer, "decode">) {
    this.#tokenizer = tokenizer;
  }

  /** All ids pushed so far. */
  get ids(): readonly number[] {
    return this.#ids;
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

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}
