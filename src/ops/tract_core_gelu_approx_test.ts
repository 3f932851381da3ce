import assert from "node:assert/strict";
import { tractCoreGeluApprox } from "./tract_core_gelu_approx.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_core_gelu_approx follows the tanh approximation", () => {
  const y = items(evalOp(tractCoreGeluApprox, { input: t("f32", [2], [0, 1]), fast_impl: false }));
  assert.deepEqual(y.map((v) => Math.round(v * 1e4) / 1e4), [0, 0.8412]);
});
