import assert from "node:assert/strict";
import { copyF32 } from "./dtype.ts";

Deno.test("copyF32 copies a view of shared memory into an array of its own", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const view = new Float32Array(memory.buffer, 64, 5);
  view.set([1.5, -0, NaN, Infinity, 3]);
  const copy = copyF32(view);
  assert.ok(!(copy.buffer instanceof SharedArrayBuffer));
  assert.deepEqual(copy, Float32Array.from([1.5, -0, NaN, Infinity, 3]));
  view[0] = 7;
  assert.equal(copy[0], 1.5);
});
