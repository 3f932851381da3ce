import assert from "node:assert/strict";
import { tractCoreProductReduce } from "./tract_core_product_reduce.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_core_product_reduce keeps the reduced axis", () => {
  const y = evalOp(tractCoreProductReduce, { input: t("f32", [2, 2], [1, 2, 3, 4]), axes: [1] });
  assert.deepEqual(y.shape, [2, 1]);
  assert.deepEqual(items(y), [2, 12]);
});
