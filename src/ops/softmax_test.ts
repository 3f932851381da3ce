import assert from "node:assert/strict";
import { softmax } from "./softmax.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("softmax normalises over the given axis", () => {
  const y = items(evalOp(softmax, { x: t("f32", [2, 2], [0, 0, 0, Math.log(3)]), axes: [1] }));
  assert.deepEqual(y.map((v) => Math.round(v * 1e6) / 1e6), [0.5, 0.5, 0.25, 0.75]);
});
