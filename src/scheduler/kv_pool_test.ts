import assert from "node:assert/strict";
import { BlockTable, KvPool, runHeadsFor } from "./kv_pool.ts";
import { loadKernels } from "../../kernels/mod.ts";
import { tensor } from "../tensor/tensor.ts";

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

Deno.test("KvPool lays the kv heads out in a run per kernel thread, read back as written, also after growing", async () => {
  const kernels = await loadKernels({ threads: 2 });
  try {
    // Six kv heads over two threads: two runs of three.
    const six = { shape: [1, 6, 0, 4], axis: 2 };
    for (const itemType of ["f32", "f16"] as const) {
      const options = { blocks: 2, blockSize: 2, itemType, growable: true };
      const pools = [
        new KvPool([six], { ...options, kernels }),
        new KvPool([six], { ...options, kernels: null }),
      ];
      const table = [1, 0, 2];
      const rows = tensor("f32", [1, 6, 5, 4], Float32Array.from({ length: 120 }, (_, i) => i / 4));
      for (const pool of pools) {
        pool.grow(3);
        pool.write(0, table, 0, rows);
        pool.grow(8);
      }
      const view = pools[0]!.view(0, table, 5);
      assert.equal(view.paged.runHeads, kernels.maxThreads === 2 ? 3 : 6);
      const [got, want] = pools.map((p) => Array.from(p.view(0, table, 5).data as Float32Array));
      assert.deepEqual(got, Array.from(rows.data as Float32Array), itemType);
      assert.deepEqual(got, want, itemType);
    }
  } finally {
    kernels.close();
  }
});

Deno.test("KvPool stores values below f16's normal range as zero of their sign, in the kernels' memory and without kernels", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const values = [1e-6, -3e-5, 0.5, 6.2e-5, -6e-5, 2 ** -14, -1e-9, 1.25];
    const want = [0, -0, 0.5, 6.198883056640625e-5, -0, 2 ** -14, -0, 1.25];
    const rows = tensor("f32", [1, 2, 1, 4], Float32Array.from(values));
    for (const k of [kernels, null]) {
      const pool = new KvPool([layout], { blocks: 1, blockSize: 2, kernels: k });
      pool.write(0, [0], 0, rows);
      const got = Array.from(pool.view(0, [0], 1).data as Float32Array);
      assert.deepEqual(got, want, k ? "kernels" : "no kernels");
      assert.ok(Object.is(got[1], -0), "the sign stays");
    }
  } finally {
    kernels.close();
  }
});

Deno.test("runHeadsFor splits the kv heads into equal runs, one per thread where they divide", () => {
  assert.deepEqual([12, 4, 8, 3, 5, 1].map((h) => runHeadsFor(h, 2)), [6, 2, 4, 1, 1, 1]);
  assert.deepEqual([12, 4, 3].map((h) => runHeadsFor(h, 1)), [12, 4, 3]);
  assert.equal(runHeadsFor(12, 8), 2);
});

Deno.test("BlockTable keeps its ids in the kernels' memory as it grows, and writes through it read back", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const pool = new KvPool([layout], { blocks: 2, blockSize: 2, kernels, growable: true });
    const table = new BlockTable(pool);
    const resident = () => Array.from(new Int32Array(kernels.memory.buffer, table.offset, 3));
    const ids = table.ids;
    table.push(pool.allocate()!);
    table.push(pool.allocate()!);
    pool.grow(3); // more blocks than the table has room for: its ids move
    table.push(pool.allocate()!);
    assert.deepEqual(ids, [0, 1, 2]);
    assert.deepEqual(resident(), [0, 1, 2]);
    const rows = tensor("f32", [1, 2, 5, 4], Float32Array.from({ length: 40 }, (_, i) => i / 8));
    pool.write(0, table, 0, rows);
    assert.equal(pool.view(0, table, 5).paged.tableAt, table.offset);
    assert.deepEqual(
      Array.from(pool.view(0, table, 5).data as Float32Array),
      Array.from(pool.view(0, [0, 1, 2], 5).data as Float32Array),
    );
    assert.deepEqual(
      Array.from(pool.view(0, table, 5).data as Float32Array),
      Array.from(rows.data as Float32Array),
    );
    table.clear();
    table.push(2);
    assert.equal(table.ids, ids, "one array for the table's life");
    assert.deepEqual(ids, [2]);
    assert.equal(new Int32Array(kernels.memory.buffer, table.offset, 1)[0], 2);
  } finally {
    kernels.close();
  }
});
