import assert from "node:assert/strict";
import { lt } from "./lt.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("lt broadcasts a trailing-padded operand", () => {
  const z = evalOp(lt, { x: t("f32", [2, 2], [1, 20, 3, 2]), y: t("f32", [2], [10, 2]) });
  assert.deepEqual(z.shape, [2, 2]);
  assert.deepEqual(items(z).map((v) => Math.round(v * 1e4) / 1e4), [1, 0, 0, 0]);
});
