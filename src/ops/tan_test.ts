import assert from "node:assert/strict";
import { tan } from "./tan.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tan applies to each item", () => {
  const y = evalOp(tan, { x: t("f32", [2], [0, 1]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0, 1.5574]);
});
