import assert from "node:assert/strict";
import { isStrided } from "./common.ts";
import { transpose } from "./transpose.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("transpose permutes axes", () => {
  const y = evalOp(transpose, { input: t("f32", [2, 3], [1, 2, 3, 4, 5, 6]), axes: [1, 0] });
  assert.deepEqual(y.shape, [3, 2]);
  assert.deepEqual(items(y), [1, 4, 2, 5, 3, 6]);
});

Deno.test("transpose gives a view of its input's items, and a transpose back gives them in order", () => {
  const x = t("f32", [1, 2, 3, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const y = evalOp(transpose, { input: x, axes: [0, 2, 1, 3] });
  assert.ok(isStrided(y));
  assert.equal(y.data, x.data);
  assert.deepEqual(y.shape, [1, 3, 2, 2]);
  assert.deepEqual(items(y), [1, 2, 7, 8, 3, 4, 9, 10, 5, 6, 11, 12]);
  const back = evalOp(transpose, { input: y, axes: [0, 2, 1, 3] });
  assert.ok(!isStrided(back));
  assert.equal(back.data, x.data);
  assert.deepEqual(back.shape, [1, 2, 3, 2]);
  // A view of a view walks the first one's strides.
  const z = evalOp(transpose, { input: y, axes: [3, 1, 2, 0] });
  assert.deepEqual(z.shape, [2, 3, 2, 1]);
  assert.deepEqual(items(z), [1, 7, 3, 9, 5, 11, 2, 8, 4, 10, 6, 12]);
});
