import assert from "node:assert/strict";
import { tile } from "./tile.ts";
import { evalOp, items, t } from "./testing.ts";
import type { StridedTensor } from "./common.ts";

Deno.test("tile repeats along each axis", () => {
  const y = evalOp(tile, { input: t("f32", [1, 2], [1, 2]), repeats: [2, 2] });
  assert.deepEqual(y.shape, [2, 4]);
  assert.deepEqual(items(y), [1, 2, 1, 2, 1, 2, 1, 2]);
});

Deno.test("tile reads a strided view in place and copies contiguous tails as blocks", () => {
  // A (2, 2, 2) view of the first 2 rows of a (2, 3, 2) buffer.
  const buffer = Float32Array.from({ length: 12 }, (_, i) => i);
  const view: StridedTensor = {
    dtype: "f32",
    shape: [2, 1, 2, 2],
    data: buffer,
    strides: [6, 0, 2, 1],
    offset: 0,
  };
  const y = evalOp(tile, { input: view, repeats: [1, 2, 1, 1] });
  assert.deepEqual(y.shape, [2, 2, 2, 2]);
  assert.deepEqual(items(y), [0, 1, 2, 3, 0, 1, 2, 3, 6, 7, 8, 9, 6, 7, 8, 9]);
});
