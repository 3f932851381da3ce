import assert from "node:assert/strict";
import { sqrt } from "./sqrt.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("sqrt applies to each item", () => {
  const y = evalOp(sqrt, { x: t("f32", [2], [4, 16]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [2, 4]);
});
