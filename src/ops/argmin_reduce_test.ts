import assert from "node:assert/strict";
import { argminReduce } from "./argmin_reduce.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("argmin_reduce gives the index along the axis", () => {
  const y = evalOp(argminReduce, { input: t("f32", [2, 2], [1, 5, 7, 2]), axes: [1] });
  assert.deepEqual(y.shape, [2, 1]);
  assert.deepEqual(items(y), [0, 1]);
});
