import assert from "node:assert/strict";
import { cos } from "./cos.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("cos applies to each item", () => {
  const y = evalOp(cos, { x: t("f32", [2], [0, 1]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [1, 0.5403]);
});
