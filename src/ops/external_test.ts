import assert from "node:assert/strict";
import { external } from "./external.ts";
import { inferOp } from "./testing.ts";

Deno.test("external takes its item type from the generic", () => {
  assert.equal(inferOp(external, { shape: [2], "?": "scalar" }).dtype, "f32");
  assert.equal(inferOp(external, { shape: [2], "?": "integer" }).dtype, "i64");
});
