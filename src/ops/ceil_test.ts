import assert from "node:assert/strict";
import { ceil } from "./ceil.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("ceil applies to each item", () => {
  const y = evalOp(ceil, { x: t("f32", [2], [1.5, -1.5]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [2, -1]);
});
