import assert from "node:assert/strict";
import { evalOp, inferOp, items, t } from "./testing.ts";
import { tractCoreGatherElements } from "./tract_core_gather_elements.ts";

Deno.test("tractCoreGatherElements picks along the last axis with negative indices", () => {
  const data = t("f32", [2, 3], [1, 2, 3, 4, 5, 6]);
  const indices = t("i64", [2, 2], [0, -1, 2, 1]);
  const out = evalOp(tractCoreGatherElements, { input: data, indices, axis: 1 });
  assert.deepEqual(out.shape, [2, 2]);
  assert.deepEqual(items(out), [1, 3, 6, 5]);
});

Deno.test("tractCoreGatherElements picks along axis 0 with float indices", () => {
  const data = t("f32", [3, 2], [1, 2, 3, 4, 5, 6]);
  const indices = t("f32", [1, 2], [2, -3]);
  const out = evalOp(tractCoreGatherElements, { input: data, indices, axis: 0 });
  assert.deepEqual(items(out), [5, 2]);
});

Deno.test("tractCoreGatherElements rejects out-of-range indices and rank mismatches", () => {
  const data = t("f32", [2, 3], [1, 2, 3, 4, 5, 6]);
  assert.throws(
    () =>
      evalOp(tractCoreGatherElements, { input: data, indices: t("i64", [2, 1], [3, 0]), axis: 1 }),
    { name: "RangeError", message: /index 3 is out of range for axis size 3/ },
  );
  assert.throws(
    () =>
      inferOp(tractCoreGatherElements, {
        input: { dtype: "f32", shape: [2, 3] },
        indices: { dtype: "i64", shape: [6] },
        axis: 1,
      }),
    { name: "RangeError", message: /differ in rank/ },
  );
  const fact = inferOp(tractCoreGatherElements, {
    input: { dtype: "f32", shape: [2, 3, 8] },
    indices: { dtype: "i64", shape: [2, 3, 5] },
    axis: 2,
  });
  assert.deepEqual(fact.shape, [2, 3, 5]);
});
