import assert from "node:assert/strict";
import { concatBytes } from "./bytes.ts";

Deno.test("concatBytes joins chunks in order, into their total or a given size", () => {
  const chunks = [Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3)];
  assert.deepEqual(concatBytes(chunks), Uint8Array.of(1, 2, 3));
  assert.deepEqual(concatBytes(chunks, 3), Uint8Array.of(1, 2, 3));
  assert.deepEqual(concatBytes([]), new Uint8Array(0));
});
