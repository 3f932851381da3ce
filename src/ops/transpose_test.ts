import assert from "node:assert/strict";
import { transpose } from "./transpose.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("transpose permutes axes", () => {
  const y = evalOp(transpose, { input: t("f32", [2, 3], [1, 2, 3, 4, 5, 6]), axes: [1, 0] });
  assert.deepEqual(y.shape, [3, 2]);
  assert.deepEqual(items(y), [1, 4, 2, 5, 3, 6]);
});
