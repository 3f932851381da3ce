import assert from "node:assert/strict";
import { tractTransformersApplyRope } from "./tract_transformers_apply_rope.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_transformers_apply_rope rotates halves", () => {
  const y = evalOp(tractTransformersApplyRope, {
    input: t("f32", [1, 4], [1, 2, 3, 4]),
    cos: t("f32", [1, 4], [0, 0, 0, 0]),
    sin: t("f32", [1, 4], [1, 1, 1, 1]),
  });
  assert.deepEqual(items(y), [-3, -4, 1, 2]);
});
