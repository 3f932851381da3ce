import assert from "node:assert/strict";
import { exp } from "./exp.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("exp applies to each item", () => {
  const y = evalOp(exp, { x: t("f32", [2], [0, 1]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [1, 2.7183]);
});
