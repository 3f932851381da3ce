import assert from "node:assert/strict";
import { KvPool } from "./kv_pool.ts";

const layout = { shape: [1, 2, 0, 4], axis: 2 };

function take(pool: KvPool, count: number): number[] {
  return Array.from({ length: count }, () => pool.allocate()!);
}

Deno.test("KvPool hands out the lowest free blocks first, also after a sequence gave its blocks back", () => {
  const pool = new KvPool([layout, layout], { blocks: 8, kernels: null });
  const first = take(pool, 5);
  assert.deepEqual(first, [0, 1, 2, 3, 4]);
  // A sequence gives its table back front to back; the next one must not get it reversed.
  for (const id of first) pool.release(id);
  assert.deepEqual(take(pool, 6), [0, 1, 2, 3, 4, 5]);
  for (const id of [4, 1, 3]) pool.release(id);
  assert.equal(pool.freeBlocks, 5);
  assert.deepEqual(take(pool, 5), [1, 3, 4, 6, 7]);
  assert.equal(pool.allocate(), null);
});

Deno.test("KvPool frees a shared block only with its last reference", () => {
  const pool = new KvPool([layout], { blocks: 2, kernels: null });
  const [a] = take(pool, 1);
  pool.retain(a!);
  pool.release(a!);
  assert.equal(pool.refs(a!), 1);
  assert.deepEqual(take(pool, 1), [1]);
  pool.release(a!);
  assert.deepEqual(take(pool, 1), [0]);
  assert.throws(() => pool.release(5), /KV block 5 is not allocated/);
});
