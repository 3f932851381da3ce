import assert from "node:assert/strict";
import { openFileSource } from "../storage/file_source.ts";
import { memorySource } from "../storage/memory_source.ts";
import { GGML_TYPE, readGguf } from "./gguf.ts";

const TINY = new URL("../../../shared/fixtures/gguf/llama-2-tiny-random.gguf", import.meta.url)
  .pathname;

/**
 * Writes a small GGUF v3 file: every metadata value type and one tensor of `type` (a second one,
 * `w2` at `second`, when given).
 */
function buildGguf(
  type: number,
  options: { truncate?: number; second?: number } = {},
): Uint8Array {
  const out: number[] = [];
  const u32 = (v: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    out.push(...b);
  };
  const u64 = (v: number) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    out.push(...b);
  };
  const str = (s: string) => {
    const b = new TextEncoder().encode(s);
    u64(b.length);
    out.push(...b);
  };
  u32(0x46554747);
  u32(3);
  u64(options.second === undefined ? 1 : 2);
  u64(5);
  str("a.u8");
  u32(0);
  out.push(7);
  str("a.i64");
  u32(11);
  out.push(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  str("a.big");
  u32(10);
  out.push(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  str("a.arr");
  u32(9);
  u32(8);
  u64(2);
  str("x");
  str("é");
  str("a.f64");
  u32(12);
  const f = new Uint8Array(8);
  new DataView(f.buffer).setFloat64(0, 0.5, true);
  out.push(...f);
  str("w");
  u32(2);
  u64(32);
  u64(2);
  u32(type);
  u64(0);
  if (options.second !== undefined) {
    str("w2");
    u32(2);
    u64(32);
    u64(1);
    u32(type);
    u64(options.second);
  }
  while (out.length % 32 !== 0) out.push(0);
  for (let i = 0; i < 2 * 18; i++) out.push(i);
  const bytes = Uint8Array.from(out);
  return options.truncate === undefined ? bytes : bytes.subarray(0, options.truncate);
}

Deno.test("readGguf reads the header, metadata and tensor infos of a real GGUF v3", async () => {
  const source = await openFileSource(TINY);
  try {
    const gguf = await readGguf(source);
    assert.equal(gguf.version, 3);
    assert.equal(gguf.alignment, 32);
    assert.equal(gguf.dataOffset % 32, 0);
    assert.equal(gguf.metadata.get("general.architecture"), "llama");
    assert.equal(gguf.metadata.get("llama.embedding_length"), 8);
    assert.equal((gguf.metadata.get("tokenizer.ggml.tokens") as string[]).length, 32000);
    const embedding = gguf.tensors.find((t) => t.name === "token_embd.weight")!;
    assert.deepEqual(embedding.dims, [8, 32000]);
    assert.deepEqual(embedding.shape, [32000, 8]);
    assert.equal(embedding.type, GGML_TYPE.F16);
    assert.equal(embedding.byteSize, 32000 * 8 * 2);
    const last = gguf.tensors.at(-1)!;
    assert.ok(gguf.dataOffset + last.offset + last.byteSize <= await source.size());
  } finally {
    await source.close();
  }
});

Deno.test("readGguf decodes every value type and Q4_0 sizes", async () => {
  const gguf = await readGguf(memorySource(buildGguf(GGML_TYPE.Q4_0), "built.gguf"));
  assert.equal(gguf.metadata.get("a.u8"), 7);
  assert.equal(gguf.metadata.get("a.i64"), -1);
  assert.equal(gguf.metadata.get("a.big"), 0xffffffffffffffffn);
  assert.deepEqual(gguf.metadata.get("a.arr"), ["x", "é"]);
  assert.equal(gguf.metadata.get("a.f64"), 0.5);
  assert.deepEqual(gguf.tensors[0]!.shape, [2, 32]);
  assert.equal(gguf.tensors[0]!.typeName, "Q4_0");
  assert.equal(gguf.tensors[0]!.byteSize, 36);
});

Deno.test("readGguf names the file and tensor of an unknown tensor type", async () => {
  await assert.rejects(readGguf(memorySource(buildGguf(77), "odd.gguf")), {
    name: "TypeError",
    message: "Unknown GGML tensor type 77 of tensor 'w' in odd.gguf",
  });
});

Deno.test("readGguf rejects truncated files and bad magic", async () => {
  const full = buildGguf(GGML_TYPE.Q4_0);
  await assert.rejects(readGguf(memorySource(full.subarray(0, 40), "cut.gguf")), {
    name: "RangeError",
    message: /Truncated GGUF file cut\.gguf/,
  });
  await assert.rejects(readGguf(memorySource(full.subarray(0, full.length - 1), "short.gguf")), {
    name: "RangeError",
    message: /Tensor 'w' in short\.gguf: bytes .* outside the file/,
  });
  await assert.rejects(readGguf(memorySource(new Uint8Array(16), "zero.gguf")), {
    name: "SyntaxError",
    message: /Not a GGUF file: zero\.gguf/,
  });
});

Deno.test("readGguf refuses arrays nested without end", async () => {
  const out: number[] = [0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0];
  const u64 = (v: number) => out.push(v, 0, 0, 0, 0, 0, 0, 0);
  u64(0);
  u64(1);
  u64(1);
  out.push(0x6b);
  for (let i = 0; i < 1000; i++) out.push(9, 0, 0, 0, ...(i === 0 ? [] : [1, 0, 0, 0, 0, 0, 0, 0]));
  await assert.rejects(readGguf(memorySource(Uint8Array.from(out), "deep.gguf")), {
    name: "RangeError",
    message: /Array 'k' .* nests deeper than 8 levels/,
  });
});

Deno.test("readGguf refuses tensors whose bytes overlap", async () => {
  // w takes two Q4_0 rows (36 bytes); w2, one row, the first of them.
  await assert.rejects(
    () => readGguf(memorySource(buildGguf(GGML_TYPE.Q4_0, { second: 0 }), "x.gguf")),
    (e: unknown) =>
      e instanceof RangeError &&
      /^Tensor 'w2' in x\.gguf: bytes \[\d+, \d+\) overlap tensor 'w' at \[\d+, \d+\)$/.test(
        e.message,
      ),
  );
});
