import assert from "node:assert/strict";
import { reshape } from "./reshape.ts";
import { evalOp, inferOp, t } from "./testing.ts";
import { dimEquals, sym } from "../graph/dim.ts";

Deno.test("reshape copies 0 entries and infers -1", () => {
  const x = t("f32", [2, 3, 4], new Array(24).fill(0));
  assert.deepEqual(
    evalOp(reshape, { input: x, shape: [0, -1], axis_start: 0, axis_count: -1 }).shape,
    [2, 12],
  );
  assert.throws(
    () => evalOp(reshape, { input: x, shape: [5, -1], axis_start: 0, axis_count: -1 }),
    RangeError,
  );
});

Deno.test("reshape infers -1 over symbolic dims", () => {
  const s = sym("S");
  const f = inferOp(reshape, {
    input: { dtype: "f32", shape: [1, s, 64] },
    shape: [1, s, -1, 8],
    axis_start: 0,
    axis_count: -1,
  });
  assert.equal(f.shape[2], 8);
  assert.ok(dimEquals(f.shape[1]!, s));
});
