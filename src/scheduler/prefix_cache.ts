/**
 * Full KV blocks kept after their sequence ends, found again by the tokens they hold.
 *
 * Block j of a sequence holds positions j*B..(j+1)*B; what it contains depends on every token
 * up to its end, so its key is its own tokens plus the entry of the block before it (a chain,
 * exact: no hash collision can hand a sequence someone else's cache). The cache holds one
 * reference on each block it knows; a block that only the cache references is evictable, least
 * recently used first.
 */

/** The block reference counts the cache holds and drops (the KV pool). */
export interface BlockRefs {
  retain(id: number): void;
  release(id: number): void;
  refs(id: number): number;
}

interface Entry {
  readonly id: number;
  readonly block: number;
  readonly key: string;
}

/** Token-keyed full blocks, reference-counted in a {@link BlockRefs} pool. */
export class PrefixCache {
  readonly #pool: BlockRefs;
  readonly #blockSize: number;
  /** Entries by key, in least-recently-used order (a hit moves an entry to the end). */
  readonly #entries = new Map<string, Entry>();
  #nextId = 1;

  /** An empty cache over blocks of `blockSize` positions in `pool`. */
  constructor(pool: BlockRefs, blockSize: number) {
    this.#pool = pool;
    this.#blockSize = blockSize;
  }

  /** Blocks the cache holds. */
  get size(): number {
    return this.#entries.size;
  }

  /** Blocks only the cache holds (freed by `evict`). */
  get evictable(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (this.#pool.refs(e.block) === 1) n++;
    return n;
  }

  #key(parent: number, tokens: readonly number[], block: number): string {
    const B = this.#blockSize;
    return `${parent}:${tokens.slice(block * B, (block + 1) * B).join(",")}`;
  }

  /**
   * The cached blocks holding the longest prefix of `tokens`, at most `maxBlocks` of them, in
   * position order (not retained: the caller adopts them).
   */
  lookup(tokens: readonly number[], maxBlocks: number): number[] {
    const out: number[] = [];
    let parent = 0;
    const full = Math.min(maxBlocks, Math.floor(tokens.length / this.#blockSize));
    for (let j = 0; j < full; j++) {
      const key = this.#key(parent, tokens, j);
      const entry = this.#entries.get(key);
      if (!entry) break;
      this.#entries.delete(key);
      this.#entries.set(key, entry);
      out.push(entry.block);
      parent = entry.id;
    }
    return out;
  }

  /**
   * Records the full blocks of a sequence (`blocks` in position order, holding `tokens`):
   * blocks already known under their key are skipped, new ones retained.
   */
  insert(tokens: readonly number[], blocks: readonly number[]): void {
    let parent = 0;
    const full = Math.min(blocks.length, Math.floor(tokens.length / this.#blockSize));
    for (let j = 0; j < full; j++) {
      const key = this.#key(parent, tokens, j);
      let entry = this.#entries.get(key);
      if (!entry) {
        entry = { id: this.#nextId++, block: blocks[j]!, key };
        this.#pool.retain(entry.block);
        this.#entries.set(key, entry);
      }
      parent = entry.id;
    }
  }

  /** Frees up to `count` blocks only the cache holds, least recently used first; returns how many. */
  evict(count: number): number {
    let freed = 0;
    for (const [key, e] of this.#entries) {
      if (freed >= count) break;
      if (this.#pool.refs(e.block) !== 1) continue;
      this.#entries.delete(key);
      this.#pool.release(e.block);
      freed++;
    }
    return freed;
  }

  /** Drops every entry (blocks still used by sequences stay with them). */
  clear(): void {
    for (const e of this.#entries.values()) this.#pool.release(e.block);
    this.#entries.clear();
  }
}
