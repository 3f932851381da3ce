/**
 * Cuts generated text at the first stop string, matched on decoded text. Text that
 * might be the start of a stop string is held back until the next piece decides it,
 * so a stop string split across tokens never reaches the client.
 */
export class StopMatcher {
  readonly #stops: readonly string[];
  #pending = "";
  #matched: string | null = null;

  /** Empty stop strings are ignored. */
  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
  }

  /** True once a stop string was seen; later text is dropped. */
  get stopped(): boolean {
    return this.#matched !== null;
  }

  /** The stop string that was seen (the first in the text; of two there, the first given). */
  get matched(): string | null {
    return this.#matched;
  }

  /** Feeds the next piece of text; returns the part that is safe to emit now. */
  push(text: string): string {
    if (this.stopped) return "";
    const buffer = this.#pending + text;
    let cut = -1;
    for (const stop of this.#stops) {
      const at = buffer.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) {
        cut = at;
        this.#matched = stop;
      }
    }
    if (cut >= 0) {
      this.#pending = "";
      return buffer.slice(0, cut);
    }
    const hold = this.#heldLength(buffer);
    this.#pending = buffer.slice(buffer.length - hold);
    return buffer.slice(0, buffer.length - hold);
  }

  /** Releases the held-back text at the end of generation (it matched no stop string). */
  flush(): string {
    const rest = this.stopped ? "" : this.#pending;
    this.#pending = "";
    return rest;
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of a stop string. */
  #heldLength(buffer: string): number {
    let hold = 0;
    for (const stop of this.#stops) {
      for (let k = Math.min(stop.length - 1, buffer.length); k > hold; k--) {
        if (buffer.endsWith(stop.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return hold;
  }
}
