import assert from "node:assert/strict";
import { minReduce } from "./min_reduce.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("min_reduce keeps the reduced axis", () => {
  const y = evalOp(minReduce, { input: t("f32", [2, 2], [1, 2, 3, 4]), axes: [1] });
  assert.deepEqual(y.shape, [2, 1]);
  assert.deepEqual(items(y), [1, 3]);
});
