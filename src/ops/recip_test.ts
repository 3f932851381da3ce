import assert from "node:assert/strict";
import { recip } from "./recip.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("recip applies to each item", () => {
  const y = evalOp(recip, { x: t("f32", [2], [2, 4]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0.5, 0.25]);
});
