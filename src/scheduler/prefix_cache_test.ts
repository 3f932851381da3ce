import assert from "node:assert/strict";
import { PrefixCache } from "./prefix_cache.ts";

/** Reference counts of 8 blocks, as a pool keeps them. */
class Refs {
  readonly counts = new Array<number>(8).fill(0);
  retain(id: number): void {
    this.counts[id]!++;
  }
  release(id: number): void {
    assert.ok(this.counts[id]! > 0, `block ${id} released once too often`);
    this.counts[id]!--;
  }
  refs(id: number): number {
    return this.counts[id]!;
  }
}

Deno.test("PrefixCache finds the longest chain of full blocks holding a token prefix", () => {
  const refs = new Refs();
  const cache = new PrefixCache(refs, 2);
  cache.insert([1, 2, 3, 4, 5], [0, 1, 2]);
  // Two full blocks (the fifth token's block is not full).
  assert.equal(cache.size, 2);
  assert.deepEqual(refs.counts.slice(0, 3), [1, 1, 0]);
  assert.deepEqual(cache.lookup([1, 2, 3, 4, 9], 8), [0, 1]);
  assert.deepEqual(cache.lookup([1, 2, 3, 9], 8), [0]);
  assert.deepEqual(cache.lookup([1, 2, 3, 4], 1), [0]);
  // Same tokens at another position are another key: block 1 follows block 0 only.
  assert.deepEqual(cache.lookup([3, 4, 1, 2], 8), []);
});

Deno.test("PrefixCache evicts only blocks nobody else holds, least recently used first", () => {
  const refs = new Refs();
  const cache = new PrefixCache(refs, 1);
  cache.insert([10, 11], [4, 5]);
  cache.insert([20], [6]);
  refs.retain(4); // a sequence still reads block 4
  cache.lookup([20], 1); // block 6 used most recently
  assert.equal(cache.evictable, 2);
  assert.equal(cache.evict(1), 1);
  assert.deepEqual([refs.refs(4), refs.refs(5), refs.refs(6)], [2, 0, 1]);
  assert.equal(cache.evict(8), 1);
  assert.equal(refs.refs(6), 0);
  cache.clear();
  assert.equal(refs.refs(4), 1);
});

Deno.test("PrefixCache keeps the first block registered under a key", () => {
  const refs = new Refs();
  const cache = new PrefixCache(refs, 2);
  cache.insert([1, 2], [0]);
  cache.insert([1, 2, 3, 4], [3, 1]);
  assert.deepEqual(cache.lookup([1, 2, 3, 4], 2), [0, 1]);
  assert.deepEqual([refs.refs(0), refs.refs(1), refs.refs(3)], [1, 1, 0]);
});
