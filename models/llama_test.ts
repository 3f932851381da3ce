import assert from "node:assert/strict";
import { buildLlamaGraph } from "./llama_graph.ts";
import {
  checkLayerCount,
  type LlamaConfig,
  llamaConfigFromHf,
  llamaWeights,
  ropeInverseFrequencies,
} from "./llama.ts";
import { parseDocument } from "../src/nnef/parse.ts";

const LLAMA31 = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 4096,
  intermediate_size: 14336,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  num_hidden_layers: 32,
  vocab_size: 128256,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: {
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
    rope_type: "llama3",
  },
};

Deno.test("llamaConfigFromHf reads a Llama 3.1 config with GQA and llama3 RoPE scaling", () => {
  const c = llamaConfigFromHf(LLAMA31, "config.json");
  assert.equal(c.headDim, 128);
  assert.equal(c.numKvHeads, 8);
  assert.equal(c.tieWordEmbeddings, false);
  assert.deepEqual(c.ropeScaling, {
    type: "llama3",
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositions: 8192,
  });
  assert.ok(Object.isFrozen(c));
});

Deno.test("ropeInverseFrequencies applies llama3 scaling as transformers computes it in f32", () => {
  const freqs = ropeInverseFrequencies(llamaConfigFromHf(LLAMA31, "config.json"));
  // Values from transformers' _compute_llama3_parameters, evaluated in float32.
  const expected: [number, number][] = [
    [0, 1.0],
    [1, 0.8146172165870667],
    [20, 0.016560440883040428],
    [30, 0.0013718936825171113],
    [40, 3.428102354519069e-05],
    [45, 1.2297638932068367e-05],
    [50, 4.411534519022098e-06],
    [63, 3.068925877869333e-07],
  ];
  for (const [i, value] of expected) {
    assert.ok(Math.abs(freqs[i]! - value) <= 2e-7 * value, `${i}: ${freqs[i]} vs ${value}`);
  }
});

Deno.test("llamaConfigFromHf refuses what the graph cannot express, naming the file", () => {
  assert.throws(
    () => llamaConfigFromHf({ ...LLAMA31, architectures: ["PhiForCausalLM"] }, "m/config.json"),
    /m\/config\.json: unsupported architecture 'PhiForCausalLM'; supported: LlamaForCausalLM/,
  );
  assert.throws(
    () =>
      llamaConfigFromHf({
        ...LLAMA31,
        architectures: ["Qwen2ForCausalLM"],
        use_sliding_window: true,
        sliding_window: 4096,
        max_position_embeddings: 32768,
      }, "config.json"),
    /sliding-window attention \(sliding_window 4096\) is not supported/,
  );
  assert.throws(
    () => llamaConfigFromHf({ ...LLAMA31, rope_scaling: { rope_type: "yarn" } }, "config.json"),
    /rope_scaling type 'yarn' is not supported/,
  );
  assert.throws(
    () => llamaConfigFromHf({ ...LLAMA31, num_key_value_heads: 5 }, "config.json"),
    /num_attention_heads 32 is not a multiple of num_key_value_heads 5/,
  );
  assert.throws(
    () => llamaConfigFromHf({ ...LLAMA31, hidden_act: "gelu" }, "config.json"),
    /hidden_act 'gelu' is not supported/,
  );
});

Deno.test("llamaConfigFromHf accepts Mistral, with or without a sliding window, and Qwen2 with q/k/v biases", () => {
  const mistral = llamaConfigFromHf(
    { ...LLAMA31, architectures: ["MistralForCausalLM"], sliding_window: null, rope_scaling: null },
    "config.json",
  );
  assert.equal(mistral.modelType, "mistral");
  assert.equal(mistral.slidingLayers, undefined);
  // Mistral 7B v0.1: every layer sees 4096 of its 32768 positions.
  const windowed = llamaConfigFromHf(
    {
      ...LLAMA31,
      architectures: ["MistralForCausalLM"],
      sliding_window: 4096,
      max_position_embeddings: 32768,
      rope_scaling: null,
    },
    "config.json",
  );
  assert.equal(windowed.slidingWindow, 4096);
  assert.deepEqual(windowed.slidingLayers, Array(32).fill(true));
  const { architectures: _, ...untyped } = LLAMA31;
  assert.equal(llamaConfigFromHf(untyped, "config.json").architecture, "LlamaForCausalLM");
  const qwen = llamaConfigFromHf(
    {
      ...LLAMA31,
      architectures: ["Qwen2ForCausalLM"],
      use_sliding_window: false,
      sliding_window: 4096,
    },
    "config.json",
  );
  assert.equal(qwen.qkvBias, true);
  assert.equal(qwen.oBias, false);
  const names = llamaWeights(qwen).map((w) => w.name);
  assert.ok(names.includes("model.layers.0.self_attn.k_proj.bias"));
  assert.ok(!names.includes("model.layers.0.self_attn.o_proj.bias"));
});

Deno.test("llamaConfigFromHf reads Qwen3: q and k heads normed, head_dim as given, biases only with attention_bias", () => {
  const qwen3 = {
    ...LLAMA31,
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    head_dim: 256,
    use_sliding_window: false,
    sliding_window: null,
    rope_scaling: null,
  };
  const config = llamaConfigFromHf(qwen3, "config.json");
  assert.equal(config.modelType, "qwen3");
  assert.equal(config.qkNorm, true);
  assert.equal(config.headDim, 256);
  assert.equal(config.qkvBias, false);
  const names = llamaWeights(config).map((w) => w.name);
  assert.ok(names.includes("model.layers.0.self_attn.q_norm.weight"));
  assert.ok(names.includes("model.layers.0.self_attn.k_norm.weight"));
  assert.equal(llamaConfigFromHf({ ...qwen3, attention_bias: true }, "c").oBias, true);
  assert.throws(
    () => llamaConfigFromHf({ ...qwen3, use_sliding_window: true, sliding_window: 4096 }, "c"),
    /sliding-window attention/,
  );
});

/** Gemma 3 270M's text config, as the hub gives it. */
const GEMMA3_270M = {
  architectures: ["Gemma3ForCausalLM"],
  model_type: "gemma3_text",
  attention_bias: false,
  attn_logit_softcapping: null,
  final_logit_softcapping: null,
  head_dim: 256,
  hidden_activation: "gelu_pytorch_tanh",
  hidden_size: 640,
  intermediate_size: 2048,
  layer_types: Array.from(
    { length: 18 },
    (_, i) => (i + 1) % 6 === 0 ? "full_attention" : "sliding_attention",
  ),
  max_position_embeddings: 32768,
  num_attention_heads: 4,
  num_hidden_layers: 18,
  num_key_value_heads: 1,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_local_base_freq: 10000.0,
  rope_scaling: null,
  rope_theta: 1000000.0,
  sliding_window: 512,
  use_bidirectional_attention: false,
  vocab_size: 262144,
};

Deno.test("llamaConfigFromHf reads Gemma 3's text models: 1 + w norms, four a layer, GELU gate, scales, sliding layers and their RoPE base", () => {
  const config = llamaConfigFromHf(GEMMA3_270M, "config.json");
  assert.equal(config.modelType, "gemma3_text");
  assert.equal(config.normOffset, 1);
  assert.equal(config.sandwichNorms, true);
  assert.equal(config.activation, "gelu_tanh");
  assert.equal(config.embedScale, Math.sqrt(640));
  assert.equal(config.attentionScale, 1 / 16);
  assert.equal(config.slidingWindow, 512);
  assert.deepEqual(config.slidingLayers?.filter((s) => !s).length, 3);
  assert.equal(config.slidingLayers?.[5], false);
  assert.deepEqual([config.ropeTheta, config.localRopeTheta], [1e6, 1e4]);
  assert.equal(config.tieWordEmbeddings, true);
  const names = llamaWeights(config).map((w) => w.name);
  for (
    const norm of ["pre_feedforward_layernorm", "post_feedforward_layernorm", "self_attn.q_norm"]
  ) {
    assert.ok(names.includes(`model.layers.17.${norm}.weight`), norm);
  }
  assert.ok(names.includes("model.rotary_emb_local.inv_freq"));
  // Older configs: a pattern instead of layer types; newer ones: RoPE per layer type.
  const { layer_types: _, ...patterned } = GEMMA3_270M;
  assert.deepEqual(
    llamaConfigFromHf({ ...patterned, sliding_window_pattern: 6 }, "c").slidingLayers,
    config.slidingLayers,
  );
  const nested = llamaConfigFromHf({
    ...GEMMA3_270M,
    rope_theta: undefined,
    rope_local_base_freq: undefined,
    rope_parameters: {
      full_attention: { rope_type: "default", rope_theta: 2e6 },
      sliding_attention: { rope_type: "default", rope_theta: 2e4 },
    },
  }, "c");
  assert.deepEqual([nested.ropeTheta, nested.localRopeTheta], [2e6, 2e4]);
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ final_logit_softcapping: 30 }, /final_logit_softcapping 30 is not supported/],
    [{ use_bidirectional_attention: true }, /use_bidirectional_attention/],
    [{ hidden_activation: "relu" }, /hidden_activation 'relu'/],
    [{ layer_types: ["full_attention"] }, /layer_types has 1 entries for 18 layers/],
    [{ rope_scaling: { rope_type: "linear", factor: 8 } }, /rope_scaling is not supported/],
  ];
  for (const [change, message] of refused) {
    assert.throws(() => llamaConfigFromHf({ ...GEMMA3_270M, ...change }, "config.json"), message);
  }
});

const SMALL: LlamaConfig = llamaConfigFromHf({
  architectures: ["LlamaForCausalLM"],
  hidden_size: 64,
  intermediate_size: 128,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 1,
  vocab_size: 100,
  max_position_embeddings: 256,
  tie_word_embeddings: true,
}, "config.json");

Deno.test("llamaConfigFromHf reads SmolLM3's layers without RoPE, listed or every fourth", () => {
  const smollm3 = {
    ...LLAMA31,
    architectures: ["SmolLM3ForCausalLM"],
    model_type: "smollm3",
    num_hidden_layers: 8,
    rope_scaling: null,
    use_sliding_window: false,
    sliding_window: null,
    tie_word_embeddings: true,
  };
  const every4 = [true, true, true, false, true, true, true, false];
  assert.deepEqual(llamaConfigFromHf(smollm3, "config.json").ropeLayers, every4);
  const listed = { ...smollm3, no_rope_layers: [1, 0, 1, 1, 1, 1, 1, 0] };
  assert.deepEqual(
    llamaConfigFromHf(listed, "config.json").ropeLayers,
    [true, false, true, true, true, true, true, false],
  );
  assert.deepEqual(
    llamaConfigFromHf({ ...smollm3, no_rope_layer_interval: 2 }, "config.json").ropeLayers,
    every4.map((_, i) => i % 2 === 0),
  );
  assert.throws(
    () => llamaConfigFromHf({ ...smollm3, no_rope_layers: [1, 0] }, "m/config.json"),
    /m\/config.json: no_rope_layers must list 0 or 1 for each of the 8 layers, found \[1,0\]/,
  );
  assert.throws(
    () => llamaConfigFromHf({ ...smollm3, use_sliding_window: true, sliding_window: 4096 }, "c"),
    /sliding-window attention/,
  );
  // Other models rotate every layer.
  assert.equal(llamaConfigFromHf(LLAMA31, "config.json").ropeLayers, undefined);
});

Deno.test("llamaConfigFromHf reads Granite's multipliers", () => {
  const granite = {
    ...LLAMA31,
    architectures: ["GraniteForCausalLM"],
    model_type: "granite",
    rope_scaling: null,
    embedding_multiplier: 12,
    attention_multiplier: 0.015625,
    residual_multiplier: 0.22,
    logits_scaling: 8,
  };
  const config = llamaConfigFromHf(granite, "config.json");
  assert.equal(config.modelType, "granite");
  assert.deepEqual(
    [config.embedScale, config.attentionScale, config.residualScale, config.logitScale],
    [12, 0.015625, 0.22, 8],
  );
  assert.throws(
    () => llamaConfigFromHf({ ...granite, logits_scaling: 0 }, "g/config.json"),
    /g\/config.json: field 'logits_scaling' must be positive, found 0/,
  );
});

Deno.test("buildLlamaGraph writes flat tract_core statements with S/P symbols and the t2n asserts", () => {
  const text = buildLlamaGraph(SMALL, {
    dtypes: new Map([["model.layers.0.self_attn.q_proj.weight", "q40"]]),
    properties: [["converter", "rill"]],
  });
  const doc = parseDocument(text);
  assert.deepEqual(doc.extensions.map((e) => `${e.id} ${e.rest}`), [
    "tract_registry tract_core",
    "tract_symbol S",
    "tract_symbol P",
    "tract_assert P >= 0",
    "tract_assert S >= 1",
    "tract_assert S+P < 256",
    "tract_assert tg: S==1",
    "tract_assert pp: P==0",
  ]);
  assert.match(
    text,
    /model_layers_0_self_attn_q_proj_weight = variable\(label = 'model.layers.0.self_attn.q_proj.weight', shape = \[64, 64\]\);/,
  );
  assert.match(text, /lm_head_aligned = unsqueeze\(model_embed_tokens_weight, axes = \[0\]\);/);
  const ops = new Set(
    doc.graph.body.map((a) => a.right.kind === "invocation" ? a.right.invocation.op : a.right.kind),
  );
  assert.deepEqual([...ops].sort(), [
    "add",
    "concat",
    "cos",
    "gt",
    "linear",
    "mean_reduce",
    "mul",
    "neg",
    "reshape",
    "rsqrt",
    "select",
    "sigmoid",
    "sin",
    "slice",
    "softmax",
    "sqr",
    "squeeze",
    "tile",
    "tract_core_cast",
    "tract_core_einsum",
    "tract_core_external",
    "tract_core_gather",
    "tract_core_range",
    "tract_core_shape_of",
    "transpose",
    "unsqueeze",
    "variable",
  ]);
});

Deno.test("ropeInverseFrequencies divides by GGUF rope_freqs factors when present", () => {
  const plain = ropeInverseFrequencies(SMALL);
  const scaled = ropeInverseFrequencies({ ...SMALL, ropeFreqFactors: [1, 2, 4, 8, 1, 1, 1, 1] });
  assert.equal(plain.length, 8);
  assert.equal(scaled[0], plain[0]);
  assert.equal(scaled[3], Math.fround(plain[3]! / 8));
  assert.equal(scaled[7], plain[7]);
});

Deno.test("checkLayerCount refuses a config declaring more layers than the weights hold", () => {
  const names = ["model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight"];
  checkLayerCount({ ...SMALL, numLayers: 1 }, names, "config.json");
  assert.throws(
    () => checkLayerCount({ ...SMALL, numLayers: 2 ** 40 }, names, "m/config.json"),
    /^RangeError: m\/config\.json: the config declares 1099511627776 layers, the weights hold 1$/,
  );
});

/** Phi-3.5-mini-instruct's config (its 48 factors shortened to their pattern). */
const PHI35 = {
  architectures: ["Phi3ForCausalLM"],
  model_type: "phi3",
  hidden_act: "silu",
  hidden_size: 3072,
  intermediate_size: 8192,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  num_hidden_layers: 32,
  vocab_size: 32064,
  max_position_embeddings: 131072,
  original_max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  rope_scaling: {
    type: "longrope",
    short_factor: Array.from({ length: 48 }, (_, i) => 1 + i / 16),
    long_factor: Array.from({ length: 48 }, (_, i) => 1 + i),
  },
  sliding_window: 262144,
  tie_word_embeddings: false,
};

Deno.test("llamaConfigFromHf reads Phi-3: LongRoPE's short factors and attention factor up to its original context, a part of each head turned, a window", () => {
  const phi35 = llamaConfigFromHf(PHI35, "phi35.json");
  assert.equal(phi35.modelType, "phi3");
  assert.equal(phi35.maxPositions, 4096);
  assert.deepEqual(phi35.ropeFreqFactors, PHI35.rope_scaling.short_factor);
  // √(1 + ln 32 / ln 4096), transformers' LongRoPE attention factor.
  assert.ok(Math.abs(phi35.ropeAttentionFactor! - 1.19024) < 1e-5, `${phi35.ropeAttentionFactor}`);
  assert.equal(phi35.rotaryDim, undefined);
  assert.equal(phi35.slidingLayers, undefined);
  assert.equal(
    ropeInverseFrequencies(phi35)[47],
    Math.fround(
      Math.fround(1 / Math.fround(Math.pow(10000, Math.fround(94 / 96)))) / (1 + 47 / 16),
    ),
  );

  // Phi-4-mini: GQA, three quarters of each head turned, tied embeddings.
  const phi4 = llamaConfigFromHf({
    ...PHI35,
    num_attention_heads: 24,
    num_key_value_heads: 8,
    vocab_size: 200064,
    partial_rotary_factor: 0.75,
    tie_word_embeddings: true,
  }, "phi4.json");
  assert.equal(phi4.headDim, 128);
  assert.equal(phi4.rotaryDim, 96);
  assert.equal(phi4.tieWordEmbeddings, true);
  assert.equal(ropeInverseFrequencies(phi4).length, 48);
  assert.deepEqual(llamaWeights(phi4).find((w) => w.role === "rope")!.shape, [48]);

  // Phi-3-mini-4k: no scaling, every layer sees 2047 positions.
  const mini = llamaConfigFromHf({
    ...PHI35,
    max_position_embeddings: 4096,
    rope_scaling: null,
    sliding_window: 2047,
  }, "mini.json");
  assert.equal(mini.maxPositions, 4096);
  assert.equal(mini.ropeAttentionFactor, undefined);
  assert.equal(mini.slidingWindow, 2047);
  assert.deepEqual(mini.slidingLayers, Array(32).fill(true));

  assert.throws(
    () => llamaConfigFromHf({ ...PHI35, rope_scaling: { type: "yarn", factor: 4 } }, "yarn.json"),
    /yarn\.json: rope_scaling type 'yarn' is not supported for Phi-3/,
  );
  assert.throws(
    () =>
      llamaConfigFromHf(
        { ...PHI35, rope_scaling: { ...PHI35.rope_scaling, short_factor: [1, 2] } },
        "short.json",
      ),
    /short\.json: rope_scaling\.short_factor must hold 48 positive numbers/,
  );
  assert.throws(
    () => llamaConfigFromHf({ ...PHI35, partial_rotary_factor: 0.31 }, "odd.json"),
    /odd\.json: partial_rotary_factor 0\.31 turns 29 of 96 dims/,
  );
});
