import assert from "node:assert/strict";
import { rsqr } from "./rsqr.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("rsqr applies to each item", () => {
  const y = evalOp(rsqr, { x: t("f32", [2], [2, 0.5]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0.25, 4]);
});
