import assert from "node:assert/strict";
import { tractCoreBroadcast } from "./tract_core_broadcast.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tract_core_broadcast adds leading axes numpy-style", () => {
  const y = evalOp(tractCoreBroadcast, { input: t("f32", [2], [1, 2]), shape: [2, 2] });
  assert.deepEqual(y.shape, [2, 2]);
  assert.deepEqual(items(y), [1, 2, 1, 2]);
});
