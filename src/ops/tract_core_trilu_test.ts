import assert from "node:assert/strict";
import { tractCoreTrilu } from "./tract_core_trilu.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_core_trilu keeps the upper or lower triangle", () => {
  const x = t("f32", [2, 2], [1, 2, 3, 4]);
  assert.deepEqual(items(evalOp(tractCoreTrilu, { input: x, k: 1, upper: true })), [0, 2, 0, 0]);
  assert.deepEqual(items(evalOp(tractCoreTrilu, { input: x, k: 0, upper: false })), [1, 0, 3, 4]);
});
