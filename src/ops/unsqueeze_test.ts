import assert from "node:assert/strict";
import { unsqueeze } from "./unsqueeze.ts";
import { evalOp, t } from "./testing.ts";

Deno.test("unsqueeze applies sorted axes one after another", () => {
  assert.deepEqual(evalOp(unsqueeze, { input: t("f32", [3], [1, 2, 3]), axes: [0, 0] }).shape, [
    1,
    1,
    3,
  ]);
  assert.deepEqual(evalOp(unsqueeze, { input: t("f32", [3], [1, 2, 3]), axes: [1, 0] }).shape, [
    1,
    1,
    3,
  ]);
  assert.deepEqual(
    evalOp(unsqueeze, { input: t("f32", [2, 3], [1, 2, 3, 4, 5, 6]), axes: [2] }).shape,
    [2, 3, 1],
  );
});
