import assert from "node:assert/strict";
import { tractCoreRange } from "./tract_core_range.ts";
import { evalOp, inferOp, items } from "./testing.ts";
import { dimAdd, sym } from "../tensor/dim.ts";

Deno.test("tract_core_range counts from start to end by step", () => {
  assert.deepEqual(items(evalOp(tractCoreRange, { start: 2, end: 7, step: 2 })), [2, 4, 6]);
  const f = inferOp(tractCoreRange, { start: sym("P"), end: dimAdd(sym("P"), sym("S")), step: 1 });
  assert.equal(String(f.shape[0]), "S");
});
