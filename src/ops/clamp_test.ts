import assert from "node:assert/strict";
import { clamp } from "./clamp.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("clamp bounds each item", () => {
  const y = evalOp(clamp, {
    x: t("f32", [3], [-5, 0.5, 9]),
    a: t("f32", [], [0]),
    b: t("f32", [], [1]),
  });
  assert.deepEqual(items(y), [0, 0.5, 1]);
});
