import assert from "node:assert/strict";
import { sigmoid } from "./sigmoid.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("sigmoid applies to each item", () => {
  const y = evalOp(sigmoid, { x: t("f32", [2], [0, 2]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0.5, 0.8808]);
});
