import assert from "node:assert/strict";
import { log } from "./log.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("log applies to each item", () => {
  const y = evalOp(log, { x: t("f32", [2], [1, 2]) });
  assert.deepEqual(y.shape, [2]);
  assert.deepEqual(items(y).map((v) => Math.round(v * 1e4) / 1e4), [0, 0.6931]);
});
