import assert from "node:assert/strict";
import { interleavedToHalves, interleavedToHalvesF32 } from "./source.ts";

Deno.test("interleavedToHalves moves row h*hd+2i+j to h*hd+j*hd/2+i, per head", () => {
  // 2 heads of head_dim 4, one value per row: rows hold their own index.
  const rows = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual([...interleavedToHalvesF32(rows, { heads: 2, cols: 1 })], [
    0,
    2,
    1,
    3,
    4,
    6,
    5,
    7,
  ]);
  // The same on 2-byte rows (e.g. blocks): whole rows move.
  const bytes = Uint8Array.from([0, 10, 1, 11, 2, 12, 3, 13]);
  assert.deepEqual([...interleavedToHalves(bytes, { heads: 1, rowBytes: 2 })], [
    0,
    10,
    2,
    12,
    1,
    11,
    3,
    13,
  ]);
  assert.throws(
    () => interleavedToHalves(new Uint8Array(6), { heads: 1, rowBytes: 2 }),
    /Cannot reorder 3 rows/,
  );
});
