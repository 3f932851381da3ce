import assert from "node:assert/strict";
import { memorySource } from "../storage/memory_source.ts";
import { GGML_TYPE, readGguf } from "./gguf.ts";
import {
  ggufBytes,
  type GgufMetadataValue,
  type GgufTensorData,
  type GgufTensorSource,
  writeGguf,
} from "./gguf_writer.ts";

const METADATA: Record<string, GgufMetadataValue> = {
  "general.architecture": { type: "string", value: "llama" },
  "llama.block_count": { type: "u32", value: 2 },
  "llama.rope.freq_base": { type: "f32", value: 10000 },
  "tokenizer.ggml.add_bos_token": { type: "bool", value: true },
  "tokenizer.ggml.tokens": { type: "strings", value: ["<s>", "▁a"] },
  "tokenizer.ggml.scores": { type: "f32s", value: [0, -1.5] },
  "tokenizer.ggml.token_type": { type: "i32s", value: [3, 1] },
};

const TENSORS: GgufTensorData[] = [
  { name: "norm", dims: [3], type: GGML_TYPE.F32, bytes: new Uint8Array(12).fill(1) },
  { name: "w", dims: [32, 2], type: GGML_TYPE.Q4_0, bytes: new Uint8Array(36).fill(2) },
];

Deno.test("ggufBytes writes what readGguf reads: metadata, tensor infos, aligned data", async () => {
  const bytes = ggufBytes(METADATA, TENSORS);
  const gguf = await readGguf(memorySource(bytes));
  assert.equal(gguf.version, 3);
  assert.deepEqual(Object.fromEntries(gguf.metadata), {
    "general.architecture": "llama",
    "llama.block_count": 2,
    "llama.rope.freq_base": 10000,
    "tokenizer.ggml.add_bos_token": true,
    "tokenizer.ggml.tokens": ["<s>", "▁a"],
    "tokenizer.ggml.scores": [0, -1.5],
    "tokenizer.ggml.token_type": [3, 1],
  });
  assert.deepEqual(
    gguf.tensors.map((t) => [t.name, t.shape, t.typeName, t.offset, t.byteSize]),
    [["norm", [3], "F32", 0, 12], ["w", [2, 32], "Q4_0", 32, 36]],
  );
  assert.equal(gguf.dataOffset % 32, 0);
  for (const [i, t] of gguf.tensors.entries()) {
    const at = gguf.dataOffset + t.offset;
    assert.deepEqual(bytes.subarray(at, at + t.byteSize), TENSORS[i]!.bytes);
  }
  assert.equal(bytes.length, gguf.dataOffset + 32 + 64);
});

Deno.test("writeGguf streams the bytes of ggufBytes, making each tensor when its turn comes", async () => {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    const made: string[] = [];
    const sources: GgufTensorSource[] = TENSORS.map((t) => ({
      name: t.name,
      dims: t.dims,
      type: t.type,
      byteLength: t.bytes.length,
      produce: () => {
        made.push(t.name);
        return Promise.resolve(t.bytes);
      },
    }));
    await writeGguf(path, METADATA, sources);
    assert.deepEqual(made, ["norm", "w"]);
    assert.deepEqual(await Deno.readFile(path), ggufBytes(METADATA, TENSORS));
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("writeGguf names the tensor that produced another size than it announced", async () => {
  const path = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    await assert.rejects(
      writeGguf(path, METADATA, [
        {
          name: "w",
          dims: [32],
          type: GGML_TYPE.Q4_0,
          byteLength: 18,
          produce: () => TENSORS[1]!.bytes,
        },
      ]),
      (e: unknown) =>
        e instanceof RangeError && /'w' produced 36 bytes, announced 18/.test(e.message),
    );
  } finally {
    await Deno.remove(path);
  }
});
