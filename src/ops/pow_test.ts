import assert from "node:assert/strict";
import { pow } from "./pow.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("pow broadcasts a trailing-padded operand", () => {
  const z = evalOp(pow, { x: t("f32", [2, 2], [1, 2, 3, 4]), y: t("f32", [2], [2, 0.5]) });
  assert.deepEqual(z.shape, [2, 2]);
  assert.deepEqual(items(z).map((v) => Math.round(v * 1e4) / 1e4), [1, 4, 1.7321, 2]);
});
