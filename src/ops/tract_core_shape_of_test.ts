import assert from "node:assert/strict";
import { tractCoreShapeOf } from "./tract_core_shape_of.ts";
import { evalOp, inferOp, items, t } from "./testing.ts";
import { sym } from "../tensor/dim.ts";

Deno.test("tract_core_shape_of gives the shape, symbolic at load time", () => {
  assert.deepEqual(
    items(evalOp(tractCoreShapeOf, { input: t("f32", [2, 3], [1, 2, 3, 4, 5, 6]) })),
    [2, 3],
  );
  const f = inferOp(tractCoreShapeOf, { input: { dtype: "f32", shape: [1, sym("S")] } });
  assert.deepEqual(f.dims!.map(String), ["1", "S"]);
});
