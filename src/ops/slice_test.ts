import assert from "node:assert/strict";
import { slice } from "./slice.ts";
import { evalOp, inferOp, items, t } from "./testing.ts";
import { dimEquals, sym } from "../tensor/dim.ts";

Deno.test("slice clamps, counts negative begins from the end and treats end 0 as the end", () => {
  const x = t("f32", [2, 5], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const y = evalOp(slice, { input: x, axes: [1], begin: [-3], end: [0], stride: [] });
  assert.deepEqual(y.shape, [2, 3]);
  assert.deepEqual(items(y), [2, 3, 4, 7, 8, 9]);
  const z = evalOp(slice, { input: x, axes: [1], begin: [0], end: [99], stride: [2] });
  assert.deepEqual(items(z), [0, 2, 4, 5, 7, 9]);
});

Deno.test("slice infers symbolic windows and folds shape vectors", () => {
  const s = sym("S");
  const f = inferOp(slice, {
    input: { dtype: "f32", shape: [1, s, 8] },
    axes: [2],
    begin: [0],
    end: [4],
    stride: [],
  });
  assert.ok(dimEquals(f.shape[1]!, s));
  assert.equal(f.shape[2], 4);
  const v = inferOp(slice, {
    input: { dtype: "tdim", shape: [3], dims: [1, s, 8] },
    axes: [0],
    begin: [1],
    end: [2],
    stride: [1],
  });
  assert.ok(v.dims && dimEquals(v.dims[0]!, s));
});
