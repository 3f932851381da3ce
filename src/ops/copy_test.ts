import assert from "node:assert/strict";
import { copy } from "./copy.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("copy applies to each item", () => {
  const y = evalOp(copy, { x: t("f32", [2], [1, 2]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [1, 2]);
});
