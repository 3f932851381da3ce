import assert from "node:assert/strict";
import { tractTransformersSdpa } from "./tract_transformers_sdpa.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_transformers_sdpa attends with GQA, causal bottom-right alignment and default scale", () => {
  // 2 query heads share 1 kv head; q_len 1 against kv_len 2: both keys are visible.
  const q = t("f32", [1, 2, 1, 1], [0, 0]);
  const k = t("f32", [1, 1, 2, 1], [1, 1]);
  const v = t("f32", [1, 1, 2, 1], [2, 4]);
  const y = evalOp(tractTransformersSdpa, {
    q,
    k,
    v,
    mask: [],
    scale: [],
    datum_type: "f32",
    acc_datum_type: "f32",
    is_causal: true,
  });
  assert.deepEqual(y.shape, [1, 2, 1, 1]);
  assert.deepEqual(items(y), [3, 3]);
  // q_len 2 = kv_len 2, causal: the first query sees only the first key.
  const q2 = t("f32", [1, 1, 2, 1], [0, 0]);
  const y2 = evalOp(tractTransformersSdpa, {
    q: q2,
    k,
    v,
    mask: [],
    scale: [],
    datum_type: "f32",
    acc_datum_type: "f32",
    is_causal: true,
  });
  assert.deepEqual(items(y2), [2, 3]);
  const m = t("f32", [1, 2], [0, -Infinity]);
  const y3 = evalOp(tractTransformersSdpa, {
    q: q2,
    k,
    v,
    mask: m,
    scale: 1,
    datum_type: "f32",
    acc_datum_type: "f32",
    is_causal: false,
  });
  assert.deepEqual(items(y3), [2, 2]);
});
