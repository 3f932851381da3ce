import assert from "node:assert/strict";
import { sumReduce } from "./sum_reduce.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("sum_reduce keeps the reduced axis", () => {
  const y = evalOp(sumReduce, {
    input: t("f32", [2, 2], [1, 2, 3, 4]),
    axes: [1],
    normalize: false,
  });
  assert.deepEqual(y.shape, [2, 1]);
  assert.deepEqual(items(y), [3, 7]);
});
