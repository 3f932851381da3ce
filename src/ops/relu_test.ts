import assert from "node:assert/strict";
import { relu } from "./relu.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("relu applies to each item", () => {
  const y = evalOp(relu, { x: t("f32", [2], [-1, 2]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0, 2]);
});
