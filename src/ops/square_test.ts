import assert from "node:assert/strict";
import { square } from "./square.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("square applies to each item", () => {
  const y = evalOp(square, { x: t("f32", [2], [3, -2]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [9, 4]);
});
