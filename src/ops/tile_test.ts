import assert from "node:assert/strict";
import { tile } from "./tile.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("tile repeats along each axis", () => {
  const y = evalOp(tile, { input: t("f32", [1, 2], [1, 2]), repeats: [2, 2] });
  assert.deepEqual(y.shape, [2, 4]);
  assert.deepEqual(items(y), [1, 2, 1, 2, 1, 2, 1, 2]);
});
