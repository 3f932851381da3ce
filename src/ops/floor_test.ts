import assert from "node:assert/strict";
import { floor } from "./floor.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("floor applies to each item", () => {
  const y = evalOp(floor, { x: t("f32", [2], [1.5, -1.5]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [1, -2]);
});
