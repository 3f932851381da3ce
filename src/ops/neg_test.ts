import assert from "node:assert/strict";
import { neg } from "./neg.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("neg applies to each item", () => {
  const y = evalOp(neg, { x: t("f32", [2], [1, -2]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [-1, 2]);
});
