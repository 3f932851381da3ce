import assert from "node:assert/strict";
import { sign } from "./sign.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("sign applies to each item", () => {
  const y = evalOp(sign, { x: t("i32", [2], [-3, 0]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [-1, 0]);
});
