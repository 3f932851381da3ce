import assert from "node:assert/strict";
import { tractCoreSilu } from "./tract_core_silu.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_core_silu applies to each item", () => {
  const y = evalOp(tractCoreSilu, { x: t("f32", [2], [0, 2]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0, 1.7616]);
});
