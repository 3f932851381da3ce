import assert from "node:assert/strict";
import { rsqrt } from "./rsqrt.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("rsqrt applies to each item", () => {
  const y = evalOp(rsqrt, { x: t("f32", [2], [4, 16]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0.5, 0.25]);
});
