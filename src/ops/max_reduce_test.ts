import assert from "node:assert/strict";
import { maxReduce } from "./max_reduce.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("max_reduce keeps the reduced axis", () => {
  const y = evalOp(maxReduce, { input: t("f32", [2, 2], [1, 2, 3, 4]), axes: [1] });
  assert.deepEqual(y.shape, [2, 1]);
  assert.deepEqual(items(y), [2, 4]);
});
