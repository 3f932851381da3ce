import assert from "node:assert/strict";
import { allReduce } from "./all_reduce.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("all_reduce keeps the reduced axis", () => {
  const y = evalOp(allReduce, { input: t("bool", [2, 2], [1, 0, 0, 0]), axes: [1] });
  assert.deepEqual(y.shape, [2, 1]);
  assert.deepEqual(items(y), [0, 0]);
});
