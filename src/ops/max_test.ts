import assert from "node:assert/strict";
import { max } from "./max.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("max broadcasts a trailing-padded operand", () => {
  const z = evalOp(max, { x: t("f32", [2, 2], [1, 20, 3, 4]), y: t("f32", [2], [10, 2]) });
  assert.deepEqual(z.shape, [2, 2]);
  assert.deepEqual(items(z).map((v) => Math.round(v * 1e4) / 1e4), [10, 20, 3, 4]);
});
