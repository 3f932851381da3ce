/**
 * Ends a code completion at the first line indented less than a minimum, so that it stays in
 * the block it was asked for (llama.cpp's `n_indent`). Lines after the first are checked: a
 * line's leading spaces and tabs are held back until its next character shows whether there
 * are enough of them. A line with too few (an empty one too) ends the text after its
 * indentation.
 */
export class IndentStop {
  readonly #least: number;
  /** The current line's indentation so far, not yet emitted; null past it. */
  #held: string | null = null;
  #stopped = false;

  constructor(least: number) {
    this.#least = least;
  }

  /** True once a line was indented too little; later text is dropped. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Feeds the next piece of text; returns the part that is safe to emit now. */
  push(text: string): string {
    if (this.#stopped) return "";
    let out = "";
    for (const char of text) {
      if (this.#held !== null) {
        if (char === " " || char === "\t") {
          this.#held += char;
          continue;
        }
        out += this.#held;
        this.#held = null;
        if (out.length - out.lastIndexOf("\n") - 1 < this.#least) {
          this.#stopped = true;
          return out;
        }
      }
      out += char;
      if (char === "\n") this.#held = "";
    }
    return out;
  }

  /** Releases the indentation held back at the end of generation. */
  flush(): string {
    const rest = this.#stopped ? "" : this.#held ?? "";
    this.#held = null;
    return rest;
  }
}
