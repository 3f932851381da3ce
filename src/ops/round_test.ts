import assert from "node:assert/strict";
import { round } from "./round.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("round applies to each item", () => {
  const y = evalOp(round, { x: t("f32", [2], [-2.5, 2.6]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [-3, 3]);
});
