import assert from "node:assert/strict";
import { mul } from "./mul.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("mul broadcasts a trailing-padded operand", () => {
  const z = evalOp(mul, { x: t("f32", [2, 2], [1, 2, 3, 4]), y: t("f32", [2], [10, 20]) });
  assert.deepEqual(z.shape, [2, 2]);
  assert.deepEqual(items(z).map((v) => Math.round(v * 1e4) / 1e4), [10, 20, 60, 80]);
});
