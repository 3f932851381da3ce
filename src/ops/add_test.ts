import assert from "node:assert/strict";
import { add } from "./add.ts";
import { evalOp, items, t } from "./testing.ts";
import { markWeak } from "./common.ts";

Deno.test("add broadcasts a trailing-padded operand", () => {
  const z = evalOp(add, { x: t("f32", [2, 2], [1, 2, 3, 4]), y: t("f32", [2], [10, 20]) });
  assert.deepEqual(z.shape, [2, 2]);
  assert.deepEqual(items(z).map((v) => Math.round(v * 1e4) / 1e4), [11, 12, 23, 24]);
});

Deno.test("add rounds f16 results and gives a literal the other operand's type", () => {
  const z = evalOp(add, { x: t("f16", [2], [1, 1000]), y: markWeak(t("f32", [], [0.0001])) });
  assert.equal(z.dtype, "f16");
  assert.deepEqual(items(z), [1, 1000]);
});
