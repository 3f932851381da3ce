import assert from "node:assert/strict";
import { sin } from "./sin.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("sin applies to each item", () => {
  const y = evalOp(sin, { x: t("f32", [2], [0, 1]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0, 0.8415]);
});
