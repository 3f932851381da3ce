import assert from "node:assert/strict";
import { argmaxReduce } from "./argmax_reduce.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("argmax_reduce gives the index along the axis", () => {
  const y = evalOp(argmaxReduce, { input: t("f32", [2, 2], [1, 5, 7, 2]), axes: [1] });
  assert.deepEqual(y.shape, [2, 1]);
  assert.deepEqual(items(y), [1, 0]);
});
