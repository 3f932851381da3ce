import assert from "node:assert/strict";
import { tractCoreSoftmax } from "./tract_core_softmax.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_core_softmax ignores its legacy exp attribute", () => {
  const y = items(evalOp(tractCoreSoftmax, { x: t("f32", [2], [0, 0]), axes: [0], exp: "fast" }));
  assert.deepEqual(y, [0.5, 0.5]);
});
