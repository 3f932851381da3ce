import assert from "node:assert/strict";
import { squeeze } from "./squeeze.ts";
import { evalOp, inferOp, t } from "./testing.ts";

Deno.test("squeeze removes unit axes and rejects others", () => {
  assert.deepEqual(evalOp(squeeze, { input: t("f32", [1, 3, 1], [1, 2, 3]), axes: [0, 2] }).shape, [
    3,
  ]);
  assert.throws(
    () => inferOp(squeeze, { input: { dtype: "f32", shape: [2, 3] }, axes: [0] }),
    RangeError,
  );
});
