import assert from "node:assert/strict";
import { tractCoreRmsNorm } from "./tract_core_rms_norm.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_core_rms_norm scales each row to unit root mean square", () => {
  const y = evalOp(tractCoreRmsNorm, { input: t("f32", [2, 2], [3, 4, 1, 1]), axis: 1, eps: 0 });
  const r = Math.sqrt(12.5);
  assert.deepEqual(
    items(y).map((v) => Math.round(v * 1e5) / 1e5),
    [3 / r, 4 / r, 1, 1].map((v) => Math.round(v * 1e5) / 1e5),
  );
});
