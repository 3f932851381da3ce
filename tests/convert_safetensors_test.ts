import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { convertModel } from "../models/convert.ts";
import { ARCHIVE_INDEX_MEMBER } from "../src/nnef/archive_index.ts";
import { openArchive } from "../src/nnef/archive.ts";
import { parseDocument } from "../src/nnef/parse.ts";
import { dequantizeQ40 } from "../src/nnef/q40.ts";
import { decodeTensor } from "../src/nnef/tensor_decode.ts";
import { readTensorFile } from "../src/nnef/tensor_file.ts";
import { loadTokenizer } from "../src/tokenizer/load_tokenizer.ts";
import { loadModel } from "../src/graph/load_model.ts";
import { kernelWeight } from "../src/graph/weights.ts";
import { fuseGraph } from "../src/graph/fuse.ts";
import { Session } from "../src/engine/session.ts";
import { loadKernels } from "../kernels/mod.ts";
import { argmax } from "../src/engine/sampler.ts";
import {
  fixture,
  maxAbsDiff,
  plainSession,
  randomValues,
  type ReferenceConfig,
  referenceLogits,
  safetensorsBytes,
  storedValues,
  type TestTensor,
  withDir,
} from "./convert_fixtures.ts";

const SMOLLM2 = fixture("tokenizers/smollm2");

/** Granite's multipliers, of the sizes Granite 3's configs give them (as a tiny model's). */
const GRANITE = { embed: 12, attention: 0.0625, residual: 0.22, logits: 8 };

interface TinyModel {
  readonly config: ReferenceConfig;
  readonly hfConfig: Record<string, unknown>;
  readonly tensors: TestTensor[];
  /** The tensors as the folder stores them, when not `tensors` (Phi-3's fused projections). */
  readonly stored?: TestTensor[];
}

/** A tiny Phi-3's RoPE: LongRoPE's short factors over 12 of 16 dims, its window, its factor. */
const PHI3 = {
  rotaryDim: 12,
  factors: [1, 1.25, 1.5, 2, 3, 4],
  window: 5,
  maxPositions: 8192,
  original: 512,
};

/**
 * A SmolLM2-shaped model scaled down (hidden 64, 2 layers, 4 heads, 2 kv heads); as Qwen2 with
 * q/k/v biases; as Qwen3 with heads of 32 (not 64 / 4) each RMS-normed in q and k; as Gemma 3
 * like Qwen3 with Gemma's norms, gate and scales, its first layer a sliding one of 4 positions.
 */
function tinyModel(
  options: {
    qwen2?: boolean;
    qwen3?: boolean;
    gemma?: boolean;
    smollm3?: boolean;
    granite?: boolean;
    phi3?: boolean;
    mistral?: boolean;
    tied?: boolean;
  } = {},
): TinyModel {
  const gemma = options.gemma ?? false;
  const smollm3 = options.smollm3 ?? false;
  const qwen3 = (options.qwen3 ?? false) || gemma;
  const config: ReferenceConfig = {
    hidden: 64,
    intermediate: 96,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    vocab: 49152,
    eps: 1e-5,
    theta: 100000,
    tied: options.tied ?? true,
    qkvBias: options.qwen2 ?? false,
    headDim: qwen3 ? 32 : 16,
    qkNorm: qwen3,
    ...(gemma
      ? { gemma: { window: 4, sliding: [true, false], localTheta: 10000, queryScalar: 24 } }
      : {}),
    ...(smollm3 ? { ropeLayers: [true, false] } : {}),
    ...(options.granite ? { granite: GRANITE } : {}),
    ...(options.mistral ? { window: PHI3.window } : {}),
    ...(options.phi3
      ? {
        phi3: {
          rotaryDim: PHI3.rotaryDim,
          factors: PHI3.factors,
          scale: Math.sqrt(
            1 + Math.log(PHI3.maxPositions / PHI3.original) / Math.log(PHI3.original),
          ),
        },
        window: PHI3.window,
      }
      : {}),
  };
  const d = config.hidden;
  const hd = config.headDim!;
  const q = config.heads * hd;
  const kv = config.kvHeads * hd;
  const shapes: [string, number[]][] = [["model.embed_tokens.weight", [config.vocab, d]]];
  for (let l = 0; l < config.layers; l++) {
    const p = `model.layers.${l}`;
    shapes.push(
      [`${p}.input_layernorm.weight`, [d]],
      [`${p}.self_attn.q_proj.weight`, [q, d]],
      [`${p}.self_attn.k_proj.weight`, [kv, d]],
      [`${p}.self_attn.v_proj.weight`, [kv, d]],
      [`${p}.self_attn.o_proj.weight`, [d, q]],
      [`${p}.post_attention_layernorm.weight`, [d]],
      [`${p}.mlp.gate_proj.weight`, [config.intermediate, d]],
      [`${p}.mlp.up_proj.weight`, [config.intermediate, d]],
      [`${p}.mlp.down_proj.weight`, [d, config.intermediate]],
    );
    if (qwen3) {
      shapes.push([`${p}.self_attn.q_norm.weight`, [hd]], [`${p}.self_attn.k_norm.weight`, [hd]]);
    }
    if (gemma) {
      shapes.push(
        [`${p}.pre_feedforward_layernorm.weight`, [d]],
        [`${p}.post_feedforward_layernorm.weight`, [d]],
      );
    }
    if (config.qkvBias) {
      shapes.push(
        [`${p}.self_attn.q_proj.bias`, [q]],
        [`${p}.self_attn.k_proj.bias`, [kv]],
        [`${p}.self_attn.v_proj.bias`, [kv]],
      );
    }
  }
  shapes.push(["model.norm.weight", [d]]);
  if (!config.tied) shapes.push(["lm_head.weight", [config.vocab, d]]);
  const tensors = shapes.map(([name, shape], i) => {
    const count = shape.reduce((a, b) => a * b, 1);
    const norm = /(layernorm|norm)\.weight$/.test(name);
    const values = randomValues(count, 1000 + i, norm ? 0.2 : 0.15);
    // Gemma stores its norms as w, for 1 + w.
    if (norm && !gemma) { for (let k = 0; k < count; k++) values[k] = 1 + values[k]!; }
    return { name, shape, values };
  });
  const type = gemma
    ? "gemma3_text"
    : qwen3
    ? "qwen3"
    : smollm3
    ? "smollm3"
    : options.granite
    ? "granite"
    : options.phi3
    ? "phi3"
    : options.mistral
    ? "mistral"
    : config.qkvBias
    ? "qwen2"
    : "llama";
  const hfConfig = {
    architectures: [
      {
        gemma3_text: "Gemma3ForCausalLM",
        qwen3: "Qwen3ForCausalLM",
        qwen2: "Qwen2ForCausalLM",
        smollm3: "SmolLM3ForCausalLM",
        granite: "GraniteForCausalLM",
        phi3: "Phi3ForCausalLM",
        mistral: "MistralForCausalLM",
        llama: "LlamaForCausalLM",
      }[type],
    ],
    model_type: type,
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    head_dim: hd,
    hidden_act: "silu",
    hidden_size: d,
    intermediate_size: config.intermediate,
    max_position_embeddings: 8192,
    mlp_bias: false,
    num_attention_heads: config.heads,
    num_hidden_layers: config.layers,
    num_key_value_heads: config.kvHeads,
    rms_norm_eps: config.eps,
    rope_scaling: null,
    rope_theta: config.theta,
    tie_word_embeddings: config.tied,
    torch_dtype: "float32",
    use_sliding_window: false,
    vocab_size: config.vocab,
    ...(gemma
      ? {
        hidden_act: undefined,
        hidden_activation: "gelu_pytorch_tanh",
        query_pre_attn_scalar: 24,
        sliding_window: 4,
        layer_types: ["sliding_attention", "full_attention"],
        rope_local_base_freq: 10000,
        attn_logit_softcapping: null,
        final_logit_softcapping: null,
      }
      : {}),
    ...(options.granite
      ? {
        embedding_multiplier: GRANITE.embed,
        attention_multiplier: GRANITE.attention,
        residual_multiplier: GRANITE.residual,
        logits_scaling: GRANITE.logits,
      }
      : {}),
    // As SmolLM3's config writes it: the second (here the last) layer without RoPE.
    ...(smollm3 ? { no_rope_layers: [1, 0], no_rope_layer_interval: 4, sliding_window: null } : {}),
    ...(options.mistral ? { sliding_window: PHI3.window } : {}),
    // As Phi-3.5-mini's and Phi-4-mini's configs write it, scaled down.
    ...(options.phi3
      ? {
        head_dim: undefined,
        max_position_embeddings: PHI3.maxPositions,
        original_max_position_embeddings: PHI3.original,
        partial_rotary_factor: PHI3.rotaryDim / hd,
        rope_scaling: {
          type: "longrope",
          short_factor: PHI3.factors,
          long_factor: PHI3.factors.map((f) => 8 * f),
        },
        sliding_window: PHI3.window,
      }
      : {}),
  };
  return options.phi3
    ? { config, hfConfig, tensors, stored: fusedPhi3(tensors) }
    : { config, hfConfig, tensors };
}

/** Phi-3's storage: q, k and v rows in one `qkv_proj`, gate and up rows in one `gate_up_proj`. */
function fusedPhi3(tensors: readonly TestTensor[]): TestTensor[] {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const fuse = (name: string, parts: string[]): TestTensor => {
    const pieces = parts.map((part) => byName.get(part)!);
    const values = new Float32Array(pieces.reduce((n, t) => n + t.values.length, 0));
    let at = 0;
    for (const piece of pieces) {
      values.set(piece.values, at);
      at += piece.values.length;
    }
    const rows = pieces.reduce((n, t) => n + t.shape[0]!, 0);
    return { name, shape: [rows, pieces[0]!.shape[1]!], values };
  };
  const out: TestTensor[] = [];
  for (const t of tensors) {
    const m = /^(model\.layers\.\d+)\.(self_attn\.[qkv]_proj|mlp\.(gate|up)_proj)\.weight$/.exec(
      t.name,
    );
    if (m === null) {
      out.push(t);
    } else if (t.name.endsWith("q_proj.weight")) {
      const p = `${m[1]}.self_attn`;
      out.push(fuse(`${p}.qkv_proj.weight`, ["q", "k", "v"].map((x) => `${p}.${x}_proj.weight`)));
    } else if (t.name.endsWith("gate_proj.weight")) {
      const p = `${m[1]}.mlp`;
      out.push(fuse(`${p}.gate_up_proj.weight`, [`${p}.gate_proj.weight`, `${p}.up_proj.weight`]));
    }
  }
  return out;
}

async function writeFolder(
  dir: string,
  model: TinyModel,
  dtype: "F32" | "F16" | "BF16",
  shards = 1,
): Promise<void> {
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(model.hfConfig, null, 2));
  for (const name of ["tokenizer.json", "tokenizer_config.json"]) {
    await Deno.copyFile(join(SMOLLM2, name), join(dir, name));
  }
  const tensors = model.stored ?? model.tensors;
  if (shards === 1) {
    await Deno.writeFile(join(dir, "model.safetensors"), safetensorsBytes(tensors, dtype));
    return;
  }
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(tensors.length / shards);
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, "0")}-of-${
      String(shards).padStart(5, "0")
    }.safetensors`;
    const part = tensors.slice(s * per, (s + 1) * per);
    for (const t of part) weightMap[t.name] = file;
    await Deno.writeFile(join(dir, file), safetensorsBytes(part, dtype));
  }
  await Deno.writeTextFile(
    join(dir, "model.safetensors.index.json"),
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
}

/** Reads every weight of an archive back as f32 values, by label. */
async function archiveWeights(path: string): Promise<Map<string, Float32Array>> {
  const archive = await openArchive(path);
  try {
    const out = new Map<string, Float32Array>();
    for (const m of archive.members()) {
      if (!m.name.endsWith(".dat")) continue;
      const file = readTensorFile(await archive.read(m.name), m.name);
      const t = decodeTensor(file);
      const values = t.dtype === "q40"
        ? dequantizeQ40(t.data as Uint8Array, t.shape.reduce((a, b) => a * b, 1))
        : Float32Array.from(t.data as Float32Array);
      out.set(m.name.slice(0, -4), values);
    }
    return out;
  } finally {
    await archive.close();
  }
}

Deno.test("convertModel turns an HF safetensors folder into an indexed archive with the HF names", async () => {
  await withDir(async (dir) => {
    const model = tinyModel();
    await writeFolder(dir, model, "F32");
    const output = join(dir, "out", "tiny.nnef.tar");
    const result = await convertModel(dir, output, {});
    const bytes = await Deno.readFile(output);
    // The index is the first member: its name starts the tar.
    assert.equal(
      new TextDecoder().decode(bytes.subarray(0, ARCHIVE_INDEX_MEMBER.length)),
      ARCHIVE_INDEX_MEMBER,
    );
    for (const entry of result.index.members) {
      const data = bytes.subarray(entry.offset, entry.offset + entry.size);
      assert.equal(createHash("sha256").update(data).digest("hex"), entry.sha256, entry.name);
    }
    const names = result.index.members.map((m) => m.name);
    assert.deepEqual(names.slice(0, 4), [
      "graph.nnef",
      "config.json",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    const archive = await openArchive(output);
    try {
      // The reader finds every member from the index alone, in a read or two.
      assert.equal(archive.indexed, true);
      assert.ok(archive.indexBytesRead < 16384, `${archive.indexBytesRead}`);
      assert.deepEqual(
        await archive.read("tokenizer.json"),
        await Deno.readFile(join(SMOLLM2, "tokenizer.json")),
      );
      const doc = parseDocument(new TextDecoder().decode(await archive.read("graph.nnef")));
      assert.deepEqual(doc.graph.inputs, [
        "input_ids",
        "in_cache_key_0",
        "in_cache_value_0",
        "in_cache_key_1",
        "in_cache_value_1",
      ]);
      assert.deepEqual(doc.graph.outputs, [
        "outputs",
        "out_cache_key_0",
        "out_cache_value_0",
        "out_cache_key_1",
        "out_cache_value_1",
      ]);
      const text = new TextDecoder().decode(await archive.read("graph.nnef"));
      assert.match(
        text,
        /in_cache_key_0 = tract_core_external\(shape = \[1, 2, P, 16\], datum_type = 'f32'\)/,
      );
      assert.match(text, /extension tract_assert S\+P < 8192;/);
    } finally {
      await archive.close();
    }
    const weights = await archiveWeights(output);
    for (const t of model.tensors) assert.deepEqual(weights.get(t.name), t.values, t.name);
    assert.equal(weights.has("lm_head.weight"), false);
  });
});

Deno.test("convertModel reads sharded bf16 Qwen2 weights with biases and an untied head", async () => {
  await withDir(async (dir) => {
    const model = tinyModel({ qwen2: true, tied: false });
    await writeFolder(dir, model, "BF16", 3);
    const output = join(dir, "qwen.nnef.tar");
    const result = await convertModel(dir, output, {});
    // bf16 does not fit f16's range: by default it is kept exactly, in f32.
    assert.equal(result.dtypes.get("model.layers.0.self_attn.q_proj.weight"), "f32");
    assert.equal(result.dtypes.get("model.layers.0.self_attn.q_proj.bias"), "f32");
    const weights = await archiveWeights(output);
    for (const t of model.tensors) {
      assert.deepEqual(weights.get(t.name), storedValues(t.values, "BF16"), t.name);
    }
    const archive = await openArchive(output);
    try {
      const text = new TextDecoder().decode(await archive.read("graph.nnef"));
      assert.match(text, /variable<scalar>\(label = 'lm_head.weight', shape = \[49152, 64\]\)/);
      assert.match(
        text,
        /linear\(layer0_attn_norm_out, model_layers_0_self_attn_q_proj_weight_aligned, model_layers_0_self_attn_q_proj_bias_aligned\)/,
      );
    } finally {
      await archive.close();
    }
  });
});

Deno.test("convertModel --q40 stores linear weights and the tied embedding as Q4_0, which the kernels gather and classify with", async () => {
  await withDir(async (dir) => {
    const model = tinyModel();
    await writeFolder(dir, model, "F16");
    const output = join(dir, "q.nnef.tar");
    const result = await convertModel(dir, output, { q40: true });
    assert.equal(result.dtypes.get("model.layers.1.mlp.up_proj.weight"), "q40");
    // down_proj's input size 96 is a multiple of 32 too.
    assert.equal(result.dtypes.get("model.layers.1.mlp.down_proj.weight"), "q40");
    // Gathered, and read by the tied classifier.
    assert.equal(result.dtypes.get("model.embed_tokens.weight"), "q40");
    assert.equal(result.dtypes.get("model.norm.weight"), "f32");
    const weights = await archiveWeights(output);
    const up = model.tensors.find((t) => t.name === "model.layers.1.mlp.up_proj.weight")!;
    const back = weights.get(up.name)!;
    let err = 0;
    for (let i = 0; i < back.length; i++) err = Math.max(err, Math.abs(back[i]! - up.values[i]!));
    // Q4_0 step is max|x|/8 per block of 32: |x| < 0.15 here.
    assert.ok(err <= 0.15 / 8 + 1e-3, `Q4_0 error ${err}`);
    // With the weights as stored (Q4_0 dequantized), the graph computes the reference.
    await assertRunsLikeReference(output, model, weights, await smollm2Ids(), 1e-4);
    await assertKernelsLikePlain(output, await smollm2Ids(), 0.3);
    // The tied embedding is interleaved for the kernels' classifier, and gathered from there.
    using kernels = await loadKernels({ threads: 1 });
    const loaded = await loadModel(output, { kernels });
    const embedding = loaded.values.flatMap((v) => {
      const t = v.fact.value;
      return t?.dtype === "q40" && t.shape.join() === "49152,64" ? [kernelWeight(t)?.layout] : [];
    });
    assert.deepEqual(embedding, ["rows8"]);
  });
});

/**
 * The fused graph in the kernels gives the plain graph's logits within `tolerance`, over the
 * prompt and 8 greedy steps fed the plain graph's tokens (Q4_0 products take Q8_0 activations
 * in the kernels: stories260K's differ by up to 0.3).
 */
async function assertKernelsLikePlain(
  path: string,
  ids: readonly number[],
  tolerance: number,
): Promise<void> {
  using kernels = await loadKernels({ threads: 1 });
  const fused = new Session(await loadModel(path, { kernels }), { kernels });
  const plain = await plainSession(path);
  let [a, b] = [fused.prefill(ids), plain.prefill(ids)];
  for (let i = 0; i < 8; i++) {
    const diff = maxAbsDiff(a, b);
    assert.ok(diff <= tolerance, `step ${i}: the kernels' logits differ by ${diff}`);
    [a, b] = [fused.decode(argmax(b)), plain.decode(argmax(b))];
  }
}

/** Prefills all but the last token, decodes the last one, and compares with the reference. */
async function assertRunsLikeReference(
  path: string,
  model: TinyModel,
  weights: ReadonlyMap<string, Float32Array>,
  ids: readonly number[],
  tolerance: number,
): Promise<void> {
  const session = await plainSession(path);
  const prefill = session.prefill(ids.slice(0, -1));
  const expectedPrefill = referenceLogits(model.config, weights, ids.slice(0, -1));
  assert.equal(prefill.length, model.config.vocab);
  const e1 = maxAbsDiff(prefill, expectedPrefill);
  assert.ok(e1 < tolerance, `prefill logits differ by ${e1}`);
  const decode = session.decode(ids.at(-1)!);
  assert.equal(session.position, ids.length);
  const e2 = maxAbsDiff(decode, referenceLogits(model.config, weights, ids));
  assert.ok(e2 < tolerance, `decode logits differ by ${e2}`);
}

/** `model` written as an f32 HF folder under `dir`, converted to `dir/name`, and its weights. */
async function convertF32(dir: string, model: TinyModel, name: string) {
  await writeFolder(dir, model, "F32");
  const output = join(dir, name);
  await convertModel(dir, output);
  return { output, weights: new Map(model.tensors.map((t) => [t.name, t.values])) };
}

async function smollm2Ids(): Promise<number[]> {
  const tokenizer = await loadTokenizer(join(SMOLLM2, "tokenizer.json"));
  const ids = tokenizer.encode("The quick brown fox jumps over the lazy dog.");
  assert.ok(ids.length >= 6, `${ids}`);
  return ids;
}

Deno.test("convertModel output of a SmolLM2-like safetensors model runs like a reference forward pass", async () => {
  await withDir(async (dir) => {
    const model = tinyModel();
    const { output, weights } = await convertF32(dir, model, "tiny.nnef.tar");
    await assertRunsLikeReference(output, model, weights, await smollm2Ids(), 1e-4);
  });
});

Deno.test("convertModel output of a Qwen3 model (q and k heads normed, head_dim apart from hidden / heads) runs like the reference", async () => {
  await withDir(async (dir) => {
    const model = tinyModel({ qwen3: true });
    const { output, weights } = await convertF32(dir, model, "qwen3.nnef.tar");
    await assertRunsLikeReference(output, model, weights, await smollm2Ids(), 1e-4);
    // Each head norm is a fused RMSNorm too: four a layer and the final one.
    const counts = fuseGraph(await loadModel(output)).counts;
    assert.deepEqual(counts, { rmsNorm: 9, rope: 4, siluGate: 2, attention: 2 });
    await assertKernelsLikePlain(output, await smollm2Ids(), 0.01);
  });
});

Deno.test("convertModel output of a Gemma 3 model (1 + w norms, four a layer, GELU gate, scaled embeddings and scores, a sliding layer) runs like the reference", async () => {
  await withDir(async (dir) => {
    const model = tinyModel({ gemma: true });
    const { output, weights } = await convertF32(dir, model, "gemma3.nnef.tar");
    // More tokens than the sliding layer sees.
    const ids = await smollm2Ids();
    assert.ok(ids.length > 4 + 2);
    await assertRunsLikeReference(output, model, weights, ids, 1e-4);
    // Without the window, the logits are others.
    const noWindow = { ...model.config, gemma: { ...model.config.gemma!, window: 1000 } };
    const apart = maxAbsDiff(
      referenceLogits(noWindow, weights, ids),
      referenceLogits(model.config, weights, ids),
    );
    assert.ok(apart > 0.01, `the window changes the logits by ${apart}`);
    // Six norms a layer (four, and q's and k's) and the final one.
    const counts = fuseGraph(await loadModel(output)).counts;
    assert.deepEqual(counts, { rmsNorm: 13, rope: 4, siluGate: 0, attention: 2 });
    await assertKernelsLikePlain(output, ids, 0.01);
  });
});

Deno.test("convertModel output of a SmolLM3 model (a layer without RoPE) runs like the reference", async () => {
  await withDir(async (dir) => {
    const model = tinyModel({ smollm3: true });
    const { output, weights } = await convertF32(dir, model, "smollm3.nnef.tar");
    const ids = await smollm2Ids();
    await assertRunsLikeReference(output, model, weights, ids, 1e-4);
    // With RoPE in every layer, the logits are others.
    const everyLayer = { ...model.config, ropeLayers: [true, true] };
    const apart = maxAbsDiff(
      referenceLogits(everyLayer, weights, ids),
      referenceLogits(model.config, weights, ids),
    );
    assert.ok(apart > 0.01, `the layer without RoPE changes the logits by ${apart}`);
    // One layer's q and k are rotated: two RoPEs, not four.
    const counts = fuseGraph(await loadModel(output)).counts;
    assert.deepEqual(counts, { rmsNorm: 5, rope: 2, siluGate: 2, attention: 2 });
    await assertKernelsLikePlain(output, ids, 0.01);
  });
});

Deno.test("convertModel output of a Granite model (embedding, attention, residual and logit multipliers) runs like the reference, tied or not", async () => {
  await withDir(async (dir) => {
    for (const tied of [true, false]) {
      const model = tinyModel({ granite: true, tied });
      const { output, weights } = await convertF32(dir, model, `granite_${tied}.nnef.tar`);
      const ids = await smollm2Ids();
      await assertRunsLikeReference(output, model, weights, ids, 1e-4);
      // Without the multipliers, the logits are others.
      const { granite: _, ...plain } = model.config;
      const apart = maxAbsDiff(
        referenceLogits(plain, weights, ids),
        referenceLogits(model.config, weights, ids),
      );
      assert.ok(apart > 0.01, `the multipliers change the logits by ${apart}`);
      await assertKernelsLikePlain(output, ids, 0.01);
    }
  });
});

Deno.test("convertModel output of a Qwen2 model (biases, untied head, f16) runs like the reference", async () => {
  await withDir(async (dir) => {
    const model = tinyModel({ qwen2: true, tied: false });
    await writeFolder(dir, model, "F16", 2);
    const output = join(dir, "qwen.nnef.tar");
    await convertModel(dir, output);
    const weights = new Map(model.tensors.map((t) => [t.name, storedValues(t.values, "F16")]));
    await assertRunsLikeReference(output, model, weights, await smollm2Ids(), 1e-4);
  });
});

Deno.test("convertModel output of a Phi-3 model (fused projections, LongRoPE over part of each head, a window in every layer) runs like the reference", async () => {
  await withDir(async (dir) => {
    const model = tinyModel({ phi3: true });
    const { output, weights } = await convertF32(dir, model, "phi3.nnef.tar");
    const ids = await smollm2Ids();
    assert.ok(ids.length > PHI3.window + 2);
    await assertRunsLikeReference(output, model, weights, ids, 1e-4);
    // Each of the window, the attention factor and the unturned dims changes the logits.
    const phi3 = model.config.phi3!;
    for (
      const other of [
        { ...model.config, window: 1000 },
        { ...model.config, phi3: { ...phi3, scale: 1 } },
        { ...model.config, phi3: { ...phi3, rotaryDim: 16, factors: [...phi3.factors, 1, 1] } },
      ]
    ) {
      const apart = maxAbsDiff(
        referenceLogits(other, weights, ids),
        referenceLogits(model.config, weights, ids),
      );
      assert.ok(apart > 0.01, `${JSON.stringify(other)} changes the logits by ${apart}`);
    }
    // The context is LongRoPE's original one: the long factors are not read.
    const archive = await openArchive(output);
    try {
      const graph = new TextDecoder().decode(await archive.read("graph.nnef"));
      assert.ok(graph.includes(`S+P < ${PHI3.original};`), "the graph's context");
    } finally {
      await archive.close();
    }
    // Two RoPEs a layer, each over the leading 12 dims of a head.
    assert.deepEqual(fuseGraph(await loadModel(output)).counts, {
      rmsNorm: 5,
      rope: 4,
      siluGate: 2,
      attention: 2,
    });
    await assertKernelsLikePlain(output, ids, 0.01);
  });
});

Deno.test("convertModel output of a Mistral model with a sliding window runs like the reference", async () => {
  await withDir(async (dir) => {
    const model = tinyModel({ mistral: true });
    const { output, weights } = await convertF32(dir, model, "mistral.nnef.tar");
    const ids = await smollm2Ids();
    await assertRunsLikeReference(output, model, weights, ids, 1e-4);
    const { window: _, ...unwindowed } = model.config;
    const apart = maxAbsDiff(
      referenceLogits(unwindowed, weights, ids),
      referenceLogits(model.config, weights, ids),
    );
    assert.ok(apart > 0.01, `the window changes the logits by ${apart}`);
    await assertKernelsLikePlain(output, ids, 0.01);
  });
});
