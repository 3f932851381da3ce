import assert from "node:assert/strict";
import { convertModel } from "../models/convert.ts";
import { readGguf } from "../src/formats/gguf.ts";
import { openArchive } from "../src/nnef/archive.ts";
import { dequantizeQ40 } from "../src/nnef/q40.ts";
import { openFileSource } from "../src/storage/file_source.ts";
import { type LlamaShape, randomQ40Blocks, writeRandomLlamaGguf } from "./_random_gguf.ts";

const TINY: LlamaShape = {
  name: "tiny",
  dim: 64,
  layers: 1,
  heads: 4,
  kvHeads: 2,
  hidden: 96,
  vocab: 32000,
  context: 256,
};

Deno.test("randomQ40Blocks gives weights of RMS about 0.02 and mean about 0, the same for a seed", () => {
  const values = dequantizeQ40(randomQ40Blocks(32 * 4096, 3), 32 * 4096);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const rms = Math.sqrt(values.reduce((a, b) => a + b * b, 0) / values.length);
  assert.ok(Math.abs(rms - 0.02) < 0.003, `rms ${rms}`);
  assert.ok(Math.abs(mean) < 0.001, `mean ${mean}`);
  assert.deepEqual(randomQ40Blocks(64, 3), randomQ40Blocks(64, 3));
  assert.notDeepEqual(randomQ40Blocks(64, 3), randomQ40Blocks(64, 4));
});

Deno.test("writeRandomLlamaGguf writes every matrix in Q4_0, which the converter carries over as they are", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeRandomLlamaGguf(`${dir}/m.gguf`, TINY);
    const source = await openFileSource(`${dir}/m.gguf`);
    const gguf = await readGguf(source);
    assert.deepEqual(
      [
        ...new Set(
          gguf.tensors.map((t) => `${t.dims.length === 1 ? "norm" : "matrix"} ${t.typeName}`),
        ),
      ],
      ["matrix Q4_0", "norm F32"],
    );
    assert.equal(gguf.tensors.length, 3 + 9 * TINY.layers);
    assert.equal(gguf.metadata.get("llama.attention.head_count_kv"), 2);
    assert.equal((gguf.metadata.get("tokenizer.ggml.tokens") as string[]).length, 32000);
    const down = gguf.tensors.find((t) => t.name === "blk.0.ffn_down.weight")!;
    const blocks = await source.read(gguf.dataOffset + down.offset, down.byteSize);
    await source.close();

    await convertModel(`${dir}/m.gguf`, `${dir}/m.nnef.tar`);
    const archive = await openArchive(`${dir}/m.nnef.tar`);
    const dat = await archive.read("model.layers.0.mlp.down_proj.weight.dat");
    await archive.close();
    assert.deepEqual(dat.subarray(128), blocks);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeRandomLlamaGguf writes a Qwen3 shape: normed q and k heads of their own size, which the converter reads", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const shape: LlamaShape = { ...TINY, name: "tiny-qwen3", arch: "qwen3", headDim: 32 };
    await writeRandomLlamaGguf(`${dir}/q.gguf`, shape);
    const source = await openFileSource(`${dir}/q.gguf`);
    const gguf = await readGguf(source);
    await source.close();
    assert.equal(gguf.metadata.get("general.architecture"), "qwen3");
    assert.equal(gguf.metadata.get("qwen3.attention.key_length"), 32);
    assert.equal(gguf.tensors.length, 3 + 11 * shape.layers);
    assert.deepEqual(gguf.tensors.find((t) => t.name === "blk.0.attn_q.weight")!.dims, [64, 128]);
    const result = await convertModel(`${dir}/q.gguf`, `${dir}/q.nnef.tar`);
    assert.equal(result.dtypes.get("model.layers.0.self_attn.k_norm.weight"), "f32");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
