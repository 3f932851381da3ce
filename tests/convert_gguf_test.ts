import assert from "node:assert/strict";
import { join } from "node:path";
import { convertModel } from "../models/convert.ts";
import {
  ggufBytes,
  type GgufMetadataValue,
  type GgufTensorData,
} from "../src/formats/gguf_writer.ts";
import { hfNameOfGguf } from "../models/gguf_model.ts";
import { interleavedToHalves } from "../models/source.ts";
import { openArchive } from "../src/nnef/archive.ts";
import { parseDocument } from "../src/nnef/parse.ts";
import { dequantizeQ40, quantizeQ40 } from "../src/nnef/q40.ts";
import { decodeTensor } from "../src/nnef/tensor_decode.ts";
import { readTensorFile } from "../src/nnef/tensor_file.ts";
import { f32ToF16 } from "../src/tensor/f16.ts";
import {
  BLOCK32_BYTES,
  dequantizeIQ4NL,
  dequantizeIQ4XS,
  dequantizeQ2K,
  dequantizeQ3K,
  dequantizeQ4K,
  dequantizeQ51,
  dequantizeQ5K,
  dequantizeQ6K,
  dequantizeQ80,
  KQUANT_BLOCK_BYTES,
} from "../src/formats/ggml_quants.ts";
import {
  fixture,
  maxAbsDiff,
  plainSession,
  randomValues,
  type ReferenceConfig,
  referenceLogits,
  withDir,
} from "./convert_fixtures.ts";

function assertFinite(values: Float32Array): void {
  assert.ok(values.every(Number.isFinite), "non-finite logits");
}

const TINY = fixture("gguf/llama-2-tiny-random.gguf");

Deno.test("convertModel converts llama-2-tiny-random.gguf with its vocabulary as tokenizer.json", async () => {
  await withDir(async (dir) => {
    const output = join(dir, "tiny.nnef.tar");
    const result = await convertModel(TINY, output);
    assert.equal(result.format, "gguf");
    assert.equal(result.dtypes.get("model.layers.0.self_attn.q_proj.weight"), "f16");
    assert.equal(result.dtypes.has("lm_head.weight"), true);
    const archive = await openArchive(output);
    try {
      const doc = parseDocument(new TextDecoder().decode(await archive.read("graph.nnef")));
      assert.deepEqual(doc.graph.inputs, ["input_ids", "in_cache_key_0", "in_cache_value_0"]);
      const config = JSON.parse(new TextDecoder().decode(await archive.read("config.json")));
      assert.equal(config.vocab_size, 32000);
      assert.equal(config.num_attention_heads, 2);
      assert.equal(config.tie_word_embeddings, false);
      const tokenizer = JSON.parse(new TextDecoder().decode(await archive.read("tokenizer.json")));
      assert.equal(Object.keys(tokenizer.model.vocab).length, 32000);
      assert.equal(tokenizer.model.vocab["<s>"], 1);
      const head = decodeTensor(
        readTensorFile(await archive.read("lm_head.weight.dat"), "lm_head"),
      );
      assert.deepEqual(head.shape, [32000, 8]);
    } finally {
      await archive.close();
    }
    const session = await plainSession(output);
    const logits = session.prefill([1, 450, 4996]);
    assert.equal(logits.length, 32000);
    assertFinite(logits);
    assert.equal(session.position, 3);
  });
});

/** The metadata of a one-block `arch` model (`general.architecture` and its hyperparameters). */
function hyperparameters(
  arch: string,
  sizes: {
    d: number;
    ff: number;
    heads: number;
    kvHeads: number;
    context: number;
    ropeBase: number;
  },
): Record<string, GgufMetadataValue> {
  return {
    "general.architecture": { type: "string", value: arch },
    [`${arch}.embedding_length`]: { type: "u32", value: sizes.d },
    [`${arch}.block_count`]: { type: "u32", value: 1 },
    [`${arch}.feed_forward_length`]: { type: "u32", value: sizes.ff },
    [`${arch}.attention.head_count`]: { type: "u32", value: sizes.heads },
    [`${arch}.attention.head_count_kv`]: { type: "u32", value: sizes.kvHeads },
    [`${arch}.context_length`]: { type: "u32", value: sizes.context },
    [`${arch}.rope.freq_base`]: { type: "f32", value: sizes.ropeBase },
  };
}

function q80Bytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array((values.length / 32) * 34);
  for (let b = 0; b < values.length / 32; b++) {
    const block = values.subarray(32 * b, 32 * b + 32);
    const amax = Math.max(...block.map(Math.abs));
    const d = amax / 127;
    const bits = f32ToF16(d);
    out[34 * b] = bits & 0xff;
    out[34 * b + 1] = bits >> 8;
    for (let j = 0; j < 32; j++) {
      out[34 * b + 2 + j] = (Math.round(d === 0 ? 0 : block[j]! / d) + 256) % 256;
    }
  }
  return out;
}

function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(0));
}

Deno.test("convertModel carries GGUF Q4_0 blocks over and puts q/k rows back in rotate-half order, computing what llama.cpp does", async () => {
  await withDir(async (dir) => {
    const d = 32;
    const ff = 64;
    const vocab = 8;
    const q40 = quantizeQ40(randomValues(d * d, 7, 0.5)); // (32 rows, 1 block each)
    const k80 = q80Bytes(randomValues(d * d, 8, 0.5));
    const f32 = (n: number, seed: number) => f32Bytes(randomValues(n, seed, 0.5));
    const tensors: GgufTensorData[] = [
      // A Q4_0 embedding, tied to the output: gathered with datum_type f32, and a Q4_0 linear.
      {
        name: "token_embd.weight",
        dims: [d, vocab],
        type: 2,
        bytes: quantizeQ40(randomValues(d * vocab, 1, 0.5)),
      },
      { name: "blk.0.attn_norm.weight", dims: [d], type: 0, bytes: f32(d, 2) },
      { name: "blk.0.attn_q.weight", dims: [d, d], type: 2, bytes: q40 },
      { name: "blk.0.attn_k.weight", dims: [d, d], type: 8, bytes: k80 },
      { name: "blk.0.attn_v.weight", dims: [d, d], type: 0, bytes: f32(d * d, 3) },
      { name: "blk.0.attn_output.weight", dims: [d, d], type: 0, bytes: f32(d * d, 4) },
      { name: "blk.0.ffn_norm.weight", dims: [d], type: 0, bytes: f32(d, 5) },
      { name: "blk.0.ffn_gate.weight", dims: [d, ff], type: 0, bytes: f32(d * ff, 6) },
      { name: "blk.0.ffn_up.weight", dims: [d, ff], type: 0, bytes: f32(d * ff, 9) },
      { name: "blk.0.ffn_down.weight", dims: [ff, d], type: 0, bytes: f32(d * ff, 10) },
      { name: "output_norm.weight", dims: [d], type: 0, bytes: f32(d, 11) },
    ];
    const pieces = ["<unk>", "<s>", "</s>", "\u2581a", "\u2581b", "a", "b", "\u2581"];
    const input = join(dir, "q.gguf");
    await Deno.writeFile(
      input,
      ggufBytes({
        ...hyperparameters("llama", { d, ff, heads: 2, kvHeads: 2, context: 256, ropeBase: 10000 }),
        "tokenizer.ggml.model": { type: "string", value: "llama" },
        "tokenizer.ggml.tokens": { type: "strings", value: pieces },
        "tokenizer.ggml.scores": { type: "f32s", value: pieces.map((_, i) => -i) },
        "tokenizer.ggml.token_type": { type: "i32s", value: [2, 3, 3, 1, 1, 1, 1, 1] },
      }, tensors),
    );
    const output = join(dir, "q.nnef.tar");
    const result = await convertModel(input, output);
    assert.equal(result.dtypes.get("model.layers.0.self_attn.q_proj.weight"), "q40");
    assert.equal(result.dtypes.get("model.layers.0.self_attn.k_proj.weight"), "f32");
    assert.equal(result.dtypes.get("model.embed_tokens.weight"), "q40");
    const archive = await openArchive(output);
    try {
      const q = readTensorFile(
        await archive.read("model.layers.0.self_attn.q_proj.weight.dat"),
        "q_proj",
      );
      assert.equal(q.header.itemType, 0x3040);
      assert.deepEqual(q.payload, interleavedToHalves(q40, { heads: 2, rowBytes: 18 }));
      const k = decodeTensor(readTensorFile(
        await archive.read("model.layers.0.self_attn.k_proj.weight.dat"),
        "k_proj",
      ));
      const expected = interleavedToHalves(f32Bytes(dequantizeQ80(k80)), {
        heads: 2,
        rowBytes: 4 * d,
      });
      assert.deepEqual(k.data, new Float32Array(expected.buffer));
      const text = new TextDecoder().decode(await archive.read("graph.nnef"));
      assert.match(
        text,
        /model_layers_0_self_attn_q_proj_weight = variable\(label = 'model.layers.0.self_attn.q_proj.weight', shape = \[32, 32\]\)/,
      );
    } finally {
      await archive.close();
    }
    // llama.cpp's own semantics on the GGUF rows (interleaved RoPE) give the same logits.
    const floats = (t: GgufTensorData) =>
      t.type === 2
        ? dequantizeQ40(t.bytes, t.bytes.length / 18 * 32)
        : t.type === 8
        ? dequantizeQ80(t.bytes)
        : new Float32Array(t.bytes.buffer.slice(0));
    const weights = new Map(
      tensors.map((t) => [hfNameOfGguf(t.name)!, floats(t)] as [string, Float32Array]),
    );
    const reference: ReferenceConfig = {
      hidden: d,
      intermediate: ff,
      layers: 1,
      heads: 2,
      kvHeads: 2,
      vocab,
      eps: 1e-5,
      theta: 10000,
      tied: true,
      ropeInterleaved: true,
    };
    const session = await plainSession(output);
    const ids = [1, 3, 4, 5];
    const prefill = session.prefill(ids.slice(0, 3));
    assert.ok(maxAbsDiff(prefill, referenceLogits(reference, weights, ids.slice(0, 3))) < 1e-4);
    const logits = session.prefill(ids.slice(3));
    assert.equal(logits.length, vocab);
    assert.ok(maxAbsDiff(logits, referenceLogits(reference, weights, ids)) < 1e-4);
  });
});

/** A six-piece byte-level BPE vocabulary with one merge, as Qwen's GGUF files write theirs. */
const QWEN_VOCAB: Record<string, GgufMetadataValue> = {
  "tokenizer.ggml.model": { type: "string", value: "gpt2" },
  "tokenizer.ggml.pre": { type: "string", value: "qwen2" },
  "tokenizer.ggml.tokens": {
    type: "strings",
    value: ["a", "b", "ab", "\u0120", "<|im_end|>", "c"],
  },
  "tokenizer.ggml.token_type": { type: "i32s", value: [1, 1, 1, 1, 3, 1] },
  "tokenizer.ggml.merges": { type: "strings", value: ["a b"] },
  "tokenizer.ggml.eos_token_id": { type: "u32", value: 4 },
};

/** The sizes of the one-block Qwen models below: d 32, ff 64, 4 heads, 2 kv heads, vocab 6. */
const QWEN: ReferenceConfig = {
  hidden: 32,
  intermediate: 64,
  layers: 1,
  heads: 4,
  kvHeads: 2,
  vocab: 6,
  eps: Math.fround(1e-6),
  theta: 1000000,
  tied: true,
};

/**
 * A one-block `arch` GGUF of {@link QWEN}'s sizes with `tensors` and `metadata`, converted
 * under `dir`; checks that four tokens run in two chunks give the reference's logits (with
 * `reference` over {@link QWEN}). Returns the conversion's result and the archive's path.
 */
async function convertQwenGguf(
  dir: string,
  arch: string,
  tensors: readonly GgufTensorData[],
  metadata: Record<string, GgufMetadataValue>,
  reference: Partial<ReferenceConfig>,
  /** The weights as the reference reads them, under llama's names (default: `tensors`). */
  referenceTensors?: readonly GgufTensorData[],
  tolerance = 1e-4,
) {
  const input = join(dir, `${arch}.gguf`);
  const { hidden: d, intermediate: ff, heads, kvHeads } = QWEN;
  await Deno.writeFile(
    input,
    ggufBytes({
      ...hyperparameters(arch, { d, ff, heads, kvHeads, context: 1024, ropeBase: QWEN.theta }),
      [`${arch}.attention.layer_norm_rms_epsilon`]: { type: "f32", value: 1e-6 },
      ...QWEN_VOCAB,
      ...metadata,
    }, [...tensors]),
  );
  const output = join(dir, `${arch}.nnef.tar`);
  const result = await convertModel(input, output);
  // A gemma3 GGUF's norms hold 1 + w; the reference adds the 1 itself.
  const shift = reference.gemma !== undefined;
  const weights = new Map((referenceTensors ?? tensors).map((t) => {
    const values = new Float32Array(t.bytes.buffer.slice(0));
    const norm = shift && t.name.endsWith("norm.weight");
    const name = hfNameOfGguf(t.name, referenceTensors === undefined ? arch : "llama")!;
    return [name, norm ? values.map((v) => v - 1) : values];
  }));
  const session = await plainSession(output);
  const ids = [0, 2, 5, 1];
  session.prefill(ids.slice(0, 2));
  const logits = session.prefill(ids.slice(2));
  const diff = maxAbsDiff(logits, referenceLogits({ ...QWEN, ...reference }, weights, ids));
  assert.ok(diff < tolerance, `the logits differ by ${diff}`);
  return { result, output };
}

Deno.test("convertModel converts a qwen2 GGUF (biases, GQA, byte-level BPE) without reordering rows", async () => {
  await withDir(async (dir) => {
    const tensors = ggufModel(1, QWEN.hidden / QWEN.heads, { bias: true, untied: true });
    const { result, output } = await convertQwenGguf(dir, "qwen2", tensors, {}, {
      tied: false,
      qkvBias: true,
    });
    assert.equal(result.dtypes.get("model.layers.0.self_attn.k_proj.bias"), "f32");
    const archive = await openArchive(output);
    try {
      const tokenizer = JSON.parse(new TextDecoder().decode(await archive.read("tokenizer.json")));
      assert.deepEqual(tokenizer.model.merges, [["a", "b"]]);
      assert.equal(tokenizer.added_tokens[0].content, "<|im_end|>");
    } finally {
      await archive.close();
    }
  });
});

/**
 * The tensors of a `layers`-block model of {@link QWEN}'s sizes with heads of `hd`: q and k
 * normed with `qkNorm` (Qwen3), Gemma's norms after attention and the MLP with `gemma`, q/k/v
 * biases with `bias` (Qwen2), an untied `output.weight` with `untied`. Norms hold 1 + a small
 * random value.
 */
function ggufModel(
  layers: number,
  hd: number,
  options: { qkNorm?: boolean; gemma?: boolean; bias?: boolean; untied?: boolean } = {},
): GgufTensorData[] {
  const { hidden: d, intermediate: ff, vocab } = QWEN;
  const [q, kv] = [4 * hd, 2 * hd];
  const f32 = (n: number, seed: number) => f32Bytes(randomValues(n, seed, 0.5));
  const norm = (n: number, seed: number) => f32Bytes(randomValues(n, seed, 0.2).map((v) => 1 + v));
  const block = (l: number): GgufTensorData[] => {
    const at = (name: string) => `blk.${l}.${name}`;
    const seed = 100 * l;
    const tensor = (
      name: string,
      dims: number[],
      bytes: (n: number, seed: number) => Uint8Array,
      k: number,
    ) => ({
      name: at(name),
      dims,
      type: 0,
      bytes: bytes(dims.reduce((a, b) => a * b, 1), seed + k),
    });
    return [
      tensor("attn_norm.weight", [d], norm, 2),
      tensor("attn_q.weight", [d, q], f32, 3),
      ...(options.bias ? [tensor("attn_q.bias", [q], f32, 16)] : []),
      ...(options.qkNorm ? [tensor("attn_q_norm.weight", [hd], norm, 4)] : []),
      tensor("attn_k.weight", [d, kv], f32, 5),
      ...(options.bias ? [tensor("attn_k.bias", [kv], f32, 17)] : []),
      ...(options.qkNorm ? [tensor("attn_k_norm.weight", [hd], norm, 6)] : []),
      tensor("attn_v.weight", [d, kv], f32, 7),
      ...(options.bias ? [tensor("attn_v.bias", [kv], f32, 18)] : []),
      tensor("attn_output.weight", [q, d], f32, 9),
      ...(options.gemma ? [tensor("post_attention_norm.weight", [d], norm, 15)] : []),
      tensor("ffn_norm.weight", [d], norm, 10),
      tensor("ffn_gate.weight", [d, ff], f32, 11),
      tensor("ffn_up.weight", [d, ff], f32, 12),
      tensor("ffn_down.weight", [ff, d], f32, 13),
      ...(options.gemma ? [tensor("post_ffw_norm.weight", [d], norm, 19)] : []),
    ];
  };
  return [
    { name: "token_embd.weight", dims: [d, vocab], type: 0, bytes: f32(d * vocab, 1) },
    ...Array.from({ length: layers }, (_, l) => block(l)).flat(),
    { name: "output_norm.weight", dims: [d], type: 0, bytes: norm(d, 14) },
    ...(options.untied
      ? [{ name: "output.weight", dims: [d, vocab], type: 0, bytes: f32(d * vocab, 20) }]
      : []),
  ];
}

Deno.test("convertModel converts a qwen3 GGUF (q and k heads normed, key_length apart from d / heads)", async () => {
  await withDir(async (dir) => {
    const hd = 16; // d / heads would be 8
    const tensors = ggufModel(1, hd, { qkNorm: true });
    const { result } = await convertQwenGguf(dir, "qwen3", tensors, {
      "qwen3.attention.key_length": { type: "u32", value: hd },
      "qwen3.attention.value_length": { type: "u32", value: hd },
    }, { headDim: hd, qkNorm: true });
    assert.equal(result.dtypes.get("model.layers.0.self_attn.q_norm.weight"), "f32");
  });
});

Deno.test("convertModel converts a smollm3 GGUF (q/k rows reordered as llama's, every fourth layer without RoPE) as llama.cpp runs it", async () => {
  await withDir(async (dir) => {
    const tensors = ggufModel(4, QWEN.hidden / QWEN.heads);
    // Checked against the reference's llama.cpp semantics: adjacent-pair RoPE, none in layer 4.
    await convertQwenGguf(dir, "smollm3", tensors, {
      "smollm3.block_count": { type: "u32", value: 4 },
    }, { layers: 4, ropeInterleaved: true, ropeLayers: [true, true, true, false] });
  });
});

Deno.test("convertModel converts a gemma3 GGUF (norms holding 1 + w, four a layer, a sliding layer) as llama.cpp runs it", async () => {
  await withDir(async (dir) => {
    const hd = 16;
    const tensors = ggufModel(1, hd, { qkNorm: true, gemma: true });
    // The one layer is a sliding one (llama.cpp's pattern: every sixth is global) of two
    // positions: the four tokens outgrow it.
    const gemma = { window: 2, sliding: [true], localTheta: 10000, queryScalar: hd };
    const { output } = await convertQwenGguf(dir, "gemma3", tensors, {
      "gemma3.attention.key_length": { type: "u32", value: hd },
      "gemma3.attention.value_length": { type: "u32", value: hd },
      "gemma3.attention.sliding_window": { type: "u32", value: 2 },
    }, { headDim: hd, qkNorm: true, gemma });
    const archive = await openArchive(output);
    try {
      const config = JSON.parse(new TextDecoder().decode(await archive.read("config.json")));
      assert.equal(config.hidden_act, "gelu_pytorch_tanh");
    } finally {
      await archive.close();
    }
  });
});

Deno.test("convertModel converts a phi3 GGUF (fused projections, partial RoPE, LongRoPE's short factors and attention factor, a window) as the Hugging Face model runs", async () => {
  await withDir(async (dir) => {
    const hd = QWEN.hidden / QWEN.heads;
    const rotaryDim = 6;
    const split = ggufModel(1, hd);
    const byName = new Map(split.map((t) => [t.name, t]));
    const fuse = (name: string, parts: string[]): GgufTensorData => {
      const pieces = parts.map((part) => byName.get(`blk.0.${part}`)!);
      const bytes = new Uint8Array(pieces.reduce((n, t) => n + t.bytes.length, 0));
      let at = 0;
      for (const piece of pieces) {
        bytes.set(piece.bytes, at);
        at += piece.bytes.length;
      }
      const rows = pieces.reduce((n, t) => n + t.dims[1]!, 0);
      return { name: `blk.0.${name}`, dims: [pieces[0]!.dims[0]!, rows], type: 0, bytes };
    };
    const fusedNames = /^blk\.0\.(attn_[qkv]|ffn_gate|ffn_up)\.weight$/;
    const factors = new Float32Array([1, 1.5, 3]);
    const tensors: GgufTensorData[] = [
      ...split.filter((t) => !fusedNames.test(t.name)),
      fuse("attn_qkv.weight", ["attn_q.weight", "attn_k.weight", "attn_v.weight"]),
      fuse("ffn_up.weight", ["ffn_gate.weight", "ffn_up.weight"]),
      { name: "rope_factors_short.weight", dims: [3], type: 0, bytes: f32Bytes(factors) },
      {
        name: "rope_factors_long.weight",
        dims: [3],
        type: 0,
        bytes: f32Bytes(factors.map((f) => 10 * f)),
      },
    ];
    const scale = 1.25;
    const { output } = await convertQwenGguf(dir, "phi3", tensors, {
      "phi3.rope.dimension_count": { type: "u32", value: rotaryDim },
      "phi3.rope.scaling.original_context_length": { type: "u32", value: 256 },
      "phi3.rope.scaling.attn_factor": { type: "f32", value: scale },
      "phi3.attention.sliding_window": { type: "u32", value: 3 },
    }, {
      phi3: { rotaryDim, factors: [...factors], scale },
      window: 3,
    }, split);
    const archive = await openArchive(output);
    try {
      const graph = new TextDecoder().decode(await archive.read("graph.nnef"));
      assert.ok(graph.includes("S+P < 256;"), "the context is the original one");
    } finally {
      await archive.close();
    }

    // Carried-over Q4_0 blocks take the attention factor in their scales (rounded to f16).
    const qkv = tensors.find((t) => t.name === "blk.0.attn_qkv.weight")!;
    const blocks = quantizeQ40(new Float32Array(qkv.bytes.buffer.slice(0)));
    const values = dequantizeQ40(blocks, qkv.bytes.length / 4);
    const parts = [["attn_q", 0, 4 * hd], ["attn_k", 4 * hd, 2 * hd], ["attn_v", 6 * hd, 2 * hd]];
    const dequantized = split.map((t) => {
      const part = parts.find(([name]) => t.name === `blk.0.${name}.weight`);
      if (part === undefined) return t;
      const [, row, rows] = part as [string, number, number];
      const d = QWEN.hidden;
      return { ...t, bytes: f32Bytes(values.slice(row * d, (row + rows) * d)) };
    });
    const quantized = tensors.map((t) => t === qkv ? { ...t, type: 2, bytes: blocks } : t);
    await Deno.mkdir(join(dir, "q40"));
    const { result } = await convertQwenGguf(
      join(dir, "q40"),
      "phi3",
      quantized,
      {
        "phi3.rope.dimension_count": { type: "u32", value: rotaryDim },
        "phi3.rope.scaling.original_context_length": { type: "u32", value: 256 },
        "phi3.rope.scaling.attn_factor": { type: "f32", value: scale },
        "phi3.attention.sliding_window": { type: "u32", value: 3 },
      },
      { phi3: { rotaryDim, factors: [...factors], scale }, window: 3 },
      dequantized,
      2e-3,
    );
    assert.equal(result.dtypes.get("model.layers.0.self_attn.k_proj.weight"), "q40");

    // A fused tensor of other rows than the heads imply is refused, naming file and tensor.
    const bad = join(dir, "bad.gguf");
    const short = {
      ...qkv,
      dims: [qkv.dims[0]!, qkv.dims[1]! - 1],
      bytes: qkv.bytes.slice(0, -4 * QWEN.hidden),
    };
    await Deno.writeFile(
      bad,
      ggufBytes({
        ...hyperparameters("phi3", {
          d: QWEN.hidden,
          ff: QWEN.intermediate,
          heads: QWEN.heads,
          kvHeads: QWEN.kvHeads,
          context: 1024,
          ropeBase: QWEN.theta,
        }),
        ...QWEN_VOCAB,
        "phi3.rope.dimension_count": { type: "u32", value: rotaryDim },
      }, tensors.map((t) => t === qkv ? short : t)),
    );
    await assert.rejects(
      convertModel(bad, join(dir, "bad.nnef.tar")),
      /bad\.gguf: tensor 'blk\.0\.attn_qkv\.weight' has shape \[63, 32\], expected \[64, 32\]/,
    );
  });
});

Deno.test("convertModel converts a granite GGUF (q/k rows reordered as llama's, its four multipliers; Q4_0 blocks taking the residual and logit scales) as llama.cpp runs it", async () => {
  await withDir(async (dir) => {
    const hd = QWEN.hidden / QWEN.heads;
    const tensors = ggufModel(1, hd);
    const granite = { embed: 3, attention: 0.2, residual: 0.5, logits: 4 };
    const metadata: Record<string, GgufMetadataValue> = {
      "granite.embedding_scale": { type: "f32", value: granite.embed },
      "granite.attention.scale": { type: "f32", value: granite.attention },
      "granite.residual_scale": { type: "f32", value: granite.residual },
      "granite.logit_scale": { type: "f32", value: granite.logits },
    };
    const reference = { ropeInterleaved: true, granite };
    await convertQwenGguf(dir, "granite", tensors, metadata, reference);

    // The same with the residual branches' outputs and the tied embedding in Q4_0.
    const scaled = /^(blk\.0\.(attn_output|ffn_down)|token_embd)\.weight$/;
    const quantized = tensors.map((t) =>
      scaled.test(t.name)
        ? { ...t, type: 2, bytes: quantizeQ40(new Float32Array(t.bytes.buffer.slice(0))) }
        : t
    );
    const dequantized = quantized.map((t) =>
      t.type === 2
        ? { ...t, type: 0, bytes: f32Bytes(dequantizeQ40(t.bytes, t.bytes.length / 18 * 32)) }
        : t
    );
    await Deno.mkdir(join(dir, "q40"));
    const { result } = await convertQwenGguf(
      join(dir, "q40"),
      "granite",
      quantized,
      metadata,
      reference,
      dequantized,
      2e-3,
    );
    assert.equal(result.dtypes.get("model.layers.0.mlp.down_proj.weight"), "q40");
  });
});

/**
 * `rows` rows of one k-quant super-block each (256 values), of random bits with random small
 * f16 scales at `scalesAt` in each block.
 */
function kquantRows(blockBytes: number, rows: number, scalesAt: number[], seed: number) {
  const noise = randomValues(rows * blockBytes, seed, 1);
  const bytes = Uint8Array.from(noise, (v) => Math.floor((v + 1) * 128) & 0xff);
  const scales = randomValues(rows * scalesAt.length, seed + 1, 2 ** -12);
  for (let r = 0; r < rows; r++) {
    scalesAt.forEach((at, k) => {
      const bits = f32ToF16(scales[r * scalesAt.length + k]!);
      bytes[r * blockBytes + at] = bits & 0xff;
      bytes[r * blockBytes + at + 1] = bits >> 8;
    });
  }
  return bytes;
}

Deno.test("convertModel converts a GGUF of k-quants (Q2_K to Q6_K, as the _S and _M files mix them, with Q5_1 and IQ4_NL; IQ4_XS), read as llama.cpp reads them", async () => {
  await withDir(async (dir) => {
    const [d, ff, heads, kvHeads] = [256, 256, 4, 2];
    const kv = (d / heads) * kvHeads;
    const q4k = (rows: number, seed: number) =>
      ({ type: 12, bytes: kquantRows(KQUANT_BLOCK_BYTES.q4k, rows, [0, 2], seed) }) as const;
    const q5k = (rows: number, seed: number) =>
      ({ type: 13, bytes: kquantRows(KQUANT_BLOCK_BYTES.q5k, rows, [0, 2], seed) }) as const;
    const q6k = (rows: number, seed: number) =>
      ({ type: 14, bytes: kquantRows(KQUANT_BLOCK_BYTES.q6k, rows, [208], seed) }) as const;
    const q3k = (rows: number, seed: number) =>
      ({ type: 11, bytes: kquantRows(KQUANT_BLOCK_BYTES.q3k, rows, [108], seed) }) as const;
    const q2k = (rows: number, seed: number) =>
      ({ type: 10, bytes: kquantRows(KQUANT_BLOCK_BYTES.q2k, rows, [80, 82], seed) }) as const;
    const iq4xs = (rows: number, seed: number) =>
      ({ type: 23, bytes: kquantRows(KQUANT_BLOCK_BYTES.iq4xs, rows, [0], seed) }) as const;
    // The 32-value types llama.cpp falls back to where a row is no multiple of 256.
    const block32 = (type: number, blockBytes: number, rows: number, seed: number) => ({
      type,
      // d at 0, and Q5_1's m at 2.
      bytes: kquantRows(blockBytes, (rows * d) / 32, type === 7 ? [0, 2] : [0], seed),
    });
    const f32 = (n: number, seed: number, around = 0) => ({
      type: 0,
      bytes: f32Bytes(randomValues(n, seed, 0.2).map((v) => around + v)),
    });
    const tensors: GgufTensorData[] = [
      { name: "token_embd.weight", dims: [d, 6], ...block32(20, BLOCK32_BYTES.iq4nl, 6, 1) },
      { name: "blk.0.attn_norm.weight", dims: [d], ...f32(d, 2, 1) },
      { name: "blk.0.attn_q.weight", dims: [d, d], ...q4k(d, 3) },
      { name: "blk.0.attn_k.weight", dims: [d, kv], ...block32(7, BLOCK32_BYTES.q51, kv, 4) },
      { name: "blk.0.attn_v.weight", dims: [d, kv], ...q6k(kv, 5) },
      { name: "blk.0.attn_output.weight", dims: [d, d], ...q3k(d, 6) },
      { name: "blk.0.ffn_norm.weight", dims: [d], ...f32(d, 7, 1) },
      { name: "blk.0.ffn_gate.weight", dims: [d, ff], ...iq4xs(ff, 8) },
      { name: "blk.0.ffn_up.weight", dims: [d, ff], ...q5k(ff, 9) },
      { name: "blk.0.ffn_down.weight", dims: [ff, d], ...q2k(d, 10) },
      { name: "output_norm.weight", dims: [d], ...f32(d, 11, 1) },
    ];
    const input = join(dir, "kquants.gguf");
    await Deno.writeFile(
      input,
      ggufBytes({
        ...hyperparameters("qwen2", { d, ff, heads, kvHeads, context: 256, ropeBase: QWEN.theta }),
        "qwen2.attention.layer_norm_rms_epsilon": { type: "f32", value: 1e-6 },
        ...QWEN_VOCAB,
      }, tensors),
    );
    const dequantize = {
      7: dequantizeQ51,
      20: dequantizeIQ4NL,
      10: dequantizeQ2K,
      11: dequantizeQ3K,
      12: dequantizeQ4K,
      13: dequantizeQ5K,
      14: dequantizeQ6K,
      23: dequantizeIQ4XS,
    } as const;
    const weights = new Map(tensors.map((t) => [
      hfNameOfGguf(t.name, "qwen2")!,
      t.type === 0
        ? new Float32Array(t.bytes.buffer.slice(0))
        : dequantize[t.type as keyof typeof dequantize](t.bytes),
    ]));
    // Widened to f32 when stored so (the default is Q4_0: a second rounding).
    const output = join(dir, "kquants.nnef.tar");
    await convertModel(input, output);
    const archive = await openArchive(output);
    try {
      const names = ["q_proj", "k_proj", "v_proj", "o_proj"].map((p) => `self_attn.${p}`);
      const labels = [...names, "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
        .map((name) => `model.layers.0.${name}.weight`);
      for (const label of [...labels, "model.embed_tokens.weight"]) {
        const file = readTensorFile(await archive.read(`${label}.dat`), label);
        assert.deepEqual(decodeTensor(file).data, weights.get(label), label);
      }
    } finally {
      await archive.close();
    }
    const reference = {
      ...QWEN,
      hidden: d,
      intermediate: ff,
      heads,
      kvHeads,
      headDim: d / heads,
    };
    const session = await plainSession(output);
    const ids = [0, 2, 5, 1];
    const logits = session.prefill(ids);
    const diff = maxAbsDiff(logits, referenceLogits(reference, weights, ids));
    assert.ok(diff < 1e-4, `the logits differ by ${diff}`);
    const spread = Math.max(...logits) - Math.min(...logits);
    assert.ok(spread > 0.01, `logits spread ${spread}`);
    const stored = await convertModel(input, join(dir, "kquants_q40.nnef.tar"), { q40: true });
    assert.equal(stored.dtypes.get("model.layers.0.self_attn.k_proj.weight"), "q40");
  });
});
