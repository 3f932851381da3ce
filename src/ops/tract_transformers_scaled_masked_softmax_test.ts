import assert from "node:assert/strict";
import { tractTransformersScaledMaskedSoftmax } from "./tract_transformers_scaled_masked_softmax.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_transformers_scaled_masked_softmax masks before the softmax", () => {
  const x = t("f32", [1, 2], [1, 1]);
  const bool = evalOp(tractTransformersScaledMaskedSoftmax, {
    input: x,
    mask: t("bool", [1, 2], [1, 0]),
    scale: 2,
    post_softmax_mask: true,
  });
  assert.deepEqual(items(bool), [1, 0]);
  const additive = evalOp(tractTransformersScaledMaskedSoftmax, {
    input: x,
    mask: t("f32", [1, 2], [0, Math.log(3)]),
    scale: 1,
    post_softmax_mask: false,
  });
  assert.deepEqual(items(additive).map((v) => Math.round(v * 1e6) / 1e6), [0.25, 0.75]);
});
