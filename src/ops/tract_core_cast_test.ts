import assert from "node:assert/strict";
import { tractCoreCast } from "./tract_core_cast.ts";
import { evalOp, inferOp, items, t } from "./testing.ts";
import { sym } from "../tensor/dim.ts";

Deno.test("tract_core_cast truncates floats to integers and keeps tdims symbolic", () => {
  const y = evalOp(tractCoreCast, { input: t("f32", [3], [1.7, -1.7, 0]), to: "i64" });
  assert.equal(y.dtype, "i64");
  assert.deepEqual(items(y), [1, -1, 0]);
  assert.deepEqual(items(evalOp(tractCoreCast, { input: t("f32", [2], [2, 0]), to: "bool" })), [
    1,
    0,
  ]);
  const f = inferOp(tractCoreCast, {
    input: { dtype: "i64", shape: [], dims: [sym("S")] },
    to: "tdim",
  });
  assert.equal(f.dtype, "tdim");
  assert.equal(String(f.dims![0]), "S");
});
