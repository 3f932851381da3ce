import assert from "node:assert/strict";
import { tractCoreExternal } from "./tract_core_external.ts";
import { inferOp } from "./testing.ts";
import { sym } from "../tensor/dim.ts";

Deno.test("tract_core_external declares a typed input with symbolic dims", () => {
  const f = inferOp(tractCoreExternal, { shape: [1, sym("S")], datum_type: "I64" });
  assert.equal(f.dtype, "i64");
  assert.equal(String(f.shape[1]), "S");
});
