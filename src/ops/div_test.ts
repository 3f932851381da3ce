import assert from "node:assert/strict";
import { div } from "./div.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("div broadcasts a trailing-padded operand", () => {
  const z = evalOp(div, { x: t("i64", [2, 2], [7, -7, 9, 3]), y: t("i64", [2], [2, 4]) });
  assert.deepEqual(z.shape, [2, 2]);
  assert.deepEqual(items(z).map((v) => Math.round(v * 1e4) / 1e4), [3, -3, 2, 0]);
});
