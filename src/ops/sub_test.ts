import assert from "node:assert/strict";
import { sub } from "./sub.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("sub broadcasts a trailing-padded operand", () => {
  const z = evalOp(sub, { x: t("f32", [2, 2], [1, 2, 3, 4]), y: t("f32", [2], [10, 20]) });
  assert.deepEqual(z.shape, [2, 2]);
  assert.deepEqual(items(z).map((v) => Math.round(v * 1e4) / 1e4), [-9, -8, -17, -16]);
});
