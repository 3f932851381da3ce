import assert from "node:assert/strict";
import { reshape } from "./reshape.ts";
import { evalOp, inferOp, t } from "./testing.ts";
import { dimEquals, sym } from "../tensor/dim.ts";

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

Deno.test("reshape refuses axes past the input's rank, a 0 with no dim to copy and two -1", () => {
  const x = { dtype: "f32" as const, shape: [2, 3] };
  const infer = (shape: number[], start = 0, count = -1) =>
    inferOp(reshape, { input: x, shape, axis_start: start, axis_count: count });
  assert.throws(
    () => infer([6], 3),
    /axis_start 3 and axis_count -1 do not fit an input of rank 2/,
  );
  assert.throws(() => infer([6], 0, 5), /do not fit an input of rank 2/);
  assert.throws(
    () => infer([1, 1, 0]),
    /shape item 2 is 0 \(copy the input's dim\), but \[2, 3\] has no axis 2/,
  );
  assert.throws(() => infer([-1, -1]), /may hold one -1 and no other negative size/);
  assert.throws(() => infer([-2, 3]), /may hold one -1/);
});
