import assert from "node:assert/strict";
import { or } from "./or.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("or broadcasts a trailing-padded operand", () => {
  const z = evalOp(or, { x: t("bool", [2, 2], [1, 0, 0, 0]), y: t("bool", [2], [1, 0]) });
  assert.deepEqual(z.shape, [2, 2]);
  assert.deepEqual(items(z).map((v) => Math.round(v * 1e4) / 1e4), [1, 1, 0, 0]);
});
