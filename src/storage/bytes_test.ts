import assert from "node:assert/strict";
import { concatBytes, fromBase64, toBase64 } from "./bytes.ts";

Deno.test("concatBytes joins chunks in order, into their total or a given size", () => {
  const chunks = [Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3)];
  assert.deepEqual(concatBytes(chunks), Uint8Array.of(1, 2, 3));
  assert.deepEqual(concatBytes(chunks, 3), Uint8Array.of(1, 2, 3));
  assert.deepEqual(concatBytes([]), new Uint8Array(0));
});

Deno.test("toBase64 and fromBase64 carry every byte value, and fromBase64 refuses what is not base64", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const text = toBase64(bytes);
  assert.equal(text, btoa(String.fromCharCode(...bytes)));
  assert.deepEqual(fromBase64(text), bytes);
  assert.equal(toBase64(new Uint8Array(0)), "");
  assert.throws(() => fromBase64("not base64!"));
});
