import assert from "node:assert/strict";
import { tractTransformersRmsNorm } from "./tract_transformers_rms_norm.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_transformers_rms_norm is tract_core_rms_norm", () => {
  const y = evalOp(tractTransformersRmsNorm, { input: t("f32", [1, 2], [2, 2]), axis: -1, eps: 0 });
  assert.deepEqual(items(y), [1, 1]);
});
