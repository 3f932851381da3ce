import assert from "node:assert/strict";
import { abs } from "./abs.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("abs applies to each item", () => {
  const y = evalOp(abs, { x: t("i64", [2], [-3, 2]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [3, 2]);
});
