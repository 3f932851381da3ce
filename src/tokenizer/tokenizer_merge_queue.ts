/** What orders a merge candidate: its score, then its position. */
export interface MergeCandidate {
  readonly score: number;
  readonly left: number;
}

/**
 * Max-heap of merge candidates: highest score first, then leftmost (the order of
 * llama.cpp's `llm_bigram_spm` queue and of llama2.c's merge loop).
 */
export class MergeQueue<T extends MergeCandidate> {
  #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  #before(a: T, b: T): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }

  push(item: T): void {
    const items = this.#items;
    items.push(item);
    for (let i = items.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!this.#before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  /** Removes and returns the first candidate; the queue must not be empty. */
  pop(): T {
    const items = this.#items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length === 0) return top;
    items[0] = last;
    for (let i = 0;;) {
      const l = 2 * i + 1;
      let best = i;
      if (l < items.length && this.#before(items[l]!, items[best]!)) best = l;
      if (l + 1 < items.length && this.#before(items[l + 1]!, items[best]!)) best = l + 1;
      if (best === i) return top;
      [items[i], items[best]] = [items[best]!, items[i]!];
      i = best;
    }
  }
}
