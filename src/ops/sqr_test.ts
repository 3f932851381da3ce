import assert from "node:assert/strict";
import { sqr } from "./sqr.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("sqr applies to each item", () => {
  const y = evalOp(sqr, { x: t("f32", [2], [3, -2]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [9, 4]);
});
