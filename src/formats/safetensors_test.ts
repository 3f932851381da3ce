import assert from "node:assert/strict";
import { memorySource } from "../storage/memory_source.ts";
import { floatsFromBytes, readSafetensors, readSafetensorsTensor } from "./safetensors.ts";

function file(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

Deno.test("readSafetensors locates tensors and widens f16 and bf16 to f32", async () => {
  // f16 1.0 = 0x3C00, bf16 -2.0 = 0xC000
  const data = new Uint8Array([0x00, 0x3c, 0x00, 0xc0]);
  const bytes = file({
    __metadata__: { format: "pt" },
    a: { dtype: "F16", shape: [1], data_offsets: [0, 2] },
    b: { dtype: "BF16", shape: [1, 1], data_offsets: [2, 4] },
  }, data);
  const st = await readSafetensors(memorySource(bytes, "m.safetensors"));
  assert.deepEqual(st.metadata, { format: "pt" });
  assert.deepEqual([...await readSafetensorsTensor(st, st.tensors.get("a")!)], [1]);
  assert.deepEqual([...await readSafetensorsTensor(st, st.tensors.get("b")!)], [-2]);
  assert.deepEqual([...floatsFromBytes(new Uint8Array([0, 0, 0x80, 0x3f]), "F32")], [1]);
});

Deno.test("readSafetensors names the file and the fault of a bad header", async () => {
  const read = (bytes: Uint8Array) => readSafetensors(memorySource(bytes, "m.safetensors"));
  await assert.rejects(
    () => read(new Uint8Array(4)),
    /m\.safetensors: truncated safetensors file of 4 bytes/,
  );
  const big = new Uint8Array(16);
  new DataView(big.buffer).setBigUint64(0, 100n, true);
  await assert.rejects(
    () => read(big),
    /m\.safetensors: truncated safetensors file: header of 100 bytes/,
  );
  await assert.rejects(
    () => read(file({ a: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8))),
    (e: Error) => e instanceof TypeError && /tensor 'a': unsupported dtype 'I64'/.test(e.message),
  );
  await assert.rejects(
    () => read(file({ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, new Uint8Array(8))),
    /tensor 'a': data_offsets \[0, 4\] hold 4 bytes, shape \[2\] of F32 needs 8/,
  );
  await assert.rejects(
    () => read(file({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8))),
    /m\.safetensors: truncated: tensor 'a' ends at data byte 16, the file holds 8/,
  );
  const notJson = file({}, new Uint8Array(0));
  notJson[8] = 0x7b;
  notJson[9] = 0x7b;
  await assert.rejects(() => read(notJson), (e: Error) => e instanceof SyntaxError);
});

Deno.test("readSafetensors refuses tensors whose bytes overlap", async () => {
  const bytes = file({
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  }, new Uint8Array(12));
  await assert.rejects(
    () => readSafetensors(memorySource(bytes, "m.safetensors")),
    (e: unknown) =>
      e instanceof RangeError &&
      /m\.safetensors: tensor 'b' at bytes \[\d+, \d+\) overlaps tensor 'a' at \[\d+, \d+\)/.test(
        e.message,
      ),
  );
});
