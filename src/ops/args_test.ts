import assert from "node:assert/strict";
import { Args } from "./args.ts";

Deno.test("Args refuses a non-integer where an integer is declared", () => {
  const args = new Args("dyn_slice", { axis: 1.5, axes: [0, 2.5], begin: 3 });
  assert.throws(
    () => args.int("axis"),
    /^TypeError: Argument 'axis' of dyn_slice must be an integer$/,
  );
  assert.throws(() => args.dims("axes"), /Argument 'axes' of dyn_slice must be an integer/);
  assert.equal(args.int("begin"), 3);
});
