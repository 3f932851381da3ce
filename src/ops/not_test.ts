import assert from "node:assert/strict";
import { not } from "./not.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("not applies to each item", () => {
  const y = evalOp(not, { x: t("bool", [2], [1, 0]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0, 1]);
});
