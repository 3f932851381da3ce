import assert from "node:assert/strict";
import { tractCoreErf } from "./tract_core_erf.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_core_erf applies to each item", () => {
  const y = evalOp(tractCoreErf, { x: t("f32", [2], [0, 1]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0, 0.8427]);
});
