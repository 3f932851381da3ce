import assert from "node:assert/strict";
import { log2 } from "./log2.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("log2 applies to each item", () => {
  const y = evalOp(log2, { x: t("f32", [2], [1, 8]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0, 3]);
});
