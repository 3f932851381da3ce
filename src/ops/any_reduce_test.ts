import assert from "node:assert/strict";
import { anyReduce } from "./any_reduce.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("any_reduce keeps the reduced axis", () => {
  const y = evalOp(anyReduce, { input: t("bool", [2, 2], [1, 0, 0, 0]), axes: [1] });
  assert.deepEqual(y.shape, [2, 1]);
  assert.deepEqual(items(y), [1, 0]);
});
