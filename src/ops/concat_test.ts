import assert from "node:assert/strict";
import { concat } from "./concat.ts";
import { evalOp, inferOp, items, t } from "./testing.ts";
import { dimToString, sym } from "../tensor/dim.ts";

Deno.test("concat joins along an axis", () => {
  const y = evalOp(concat, {
    values: [t("f32", [2, 1], [1, 2]), t("f32", [2, 2], [3, 4, 5, 6])],
    axis: 1,
  });
  assert.deepEqual(y.shape, [2, 3]);
  assert.deepEqual(items(y), [1, 3, 4, 2, 5, 6]);
});

Deno.test("concat adds symbolic dims", () => {
  const f = inferOp(concat, {
    values: [{ dtype: "f32", shape: [1, 4, sym("P"), 8] }, {
      dtype: "f32",
      shape: [1, 4, sym("S"), 8],
    }],
    axis: 2,
  });
  assert.equal(dimToString(f.shape[2]!), "P+S");
});
