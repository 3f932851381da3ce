import assert from "node:assert/strict";
import { tractCoreEinsum } from "./tract_core_einsum.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_core_einsum computes batched products and general sums", () => {
  const q = t("f32", [1, 1, 2, 2], [1, 2, 3, 4]);
  const k = t("f32", [1, 1, 3, 2], [1, 0, 0, 1, 1, 1]);
  const qk = evalOp(tractCoreEinsum, { inputs: [q, k], expr: "bcij,bckj->bcik", acc: "f32" });
  assert.deepEqual(qk.shape, [1, 1, 2, 3]);
  assert.deepEqual(items(qk), [1, 2, 3, 3, 4, 7]);
  const v = t("f32", [1, 1, 3, 1], [1, 10, 100]);
  const o = evalOp(tractCoreEinsum, { inputs: [qk, v], expr: "bcij,bcjk->bcik", acc: "f32" });
  assert.deepEqual(items(o), [321, 743]);
  const tr = evalOp(tractCoreEinsum, {
    inputs: [t("f32", [2, 2], [1, 2, 3, 4])],
    expr: "ii->",
    acc: "f32",
  });
  assert.deepEqual(items(tr), [5]);
});
