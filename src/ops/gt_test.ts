import assert from "node:assert/strict";
import { gt } from "./gt.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("gt broadcasts a trailing-padded operand", () => {
  const z = evalOp(gt, { x: t("f32", [2, 2], [1, 20, 3, 2]), y: t("f32", [2], [10, 2]) });
  assert.deepEqual(z.shape, [2, 2]);
  assert.deepEqual(items(z).map((v) => Math.round(v * 1e4) / 1e4), [0, 1, 1, 0]);
});
