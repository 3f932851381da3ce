/**
 * The Llama family (Llama 2/3, TinyLlama, SmolLM, SmolLM3, Granite, Mistral, Qwen2, Qwen3,
 * Phi-3 and Phi-4-mini, and Gemma 3's text models):
 * one frozen config type and its Hugging Face tensor names; `llama_graph.ts` writes the NNEF
 * graph that runs it.
 */

/** HF `model_type` of each architecture (`config.json` `architectures[0]`) the converter accepts. */
const MODEL_TYPE_OF: Readonly<Record<string, string>> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  Gemma3ForCausalLM: "gemma3_text",
  SmolLM3ForCausalLM: "smollm3",
  GraniteForCausalLM: "granite",
  Phi3ForCausalLM: "phi3",
};

/** `rope_scaling` of type `llama3` (Llama 3.1+), or `linear`. */
export type RopeScaling =
  | {
    readonly type: "llama3";
    readonly factor: number;
    readonly lowFreqFactor: number;
    readonly highFreqFactor: number;
    readonly originalMaxPositions: number;
  }
  | { readonly type: "linear"; readonly factor: number };

/** Everything the graph builder needs to know about a model of the family. */
export interface LlamaConfig {
  readonly architecture: string;
  /**
   * HF `model_type`: `llama`, `mistral`, `qwen2`, `qwen3`, `gemma3_text`, `smollm3`, `granite`
   * or `phi3`.
   */
  readonly modelType: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly maxPositions: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling | null;
  readonly tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (Qwen2, Llama with `attention_bias`). */
  readonly qkvBias: boolean;
  /** Bias on the output projection (Llama with `attention_bias`). */
  readonly oBias: boolean;
  /** An RMSNorm over each head of q and k before RoPE (Qwen3's `q_norm`, `k_norm`). */
  readonly qkNorm?: boolean;
  /** Per-frequency divisors of the inverse RoPE frequencies (GGUF `rope_freqs.weight`). */
  readonly ropeFreqFactors?: readonly number[];
  /** What the model adds to each norm weight before scaling (Gemma: 1, its norms are 1 + w). */
  readonly normOffset?: number;
  /**
   * Gemma's four norms a layer: the attention's and the MLP's outputs are normed before their
   * residual adds (`post_attention_layernorm`, `post_feedforward_layernorm`), and the MLP's input
   * by `pre_feedforward_layernorm`.
   */
  readonly sandwichNorms?: boolean;
  /** The MLP gate's activation (default silu). */
  readonly activation?: "silu" | "gelu_tanh";
  /** The token embeddings are multiplied by this (Gemma: √hidden). */
  readonly embedScale?: number;
  /** Attention scores are multiplied by this (default 1/√head_dim). */
  readonly attentionScale?: number;
  /** Layers that attend to the last `slidingWindow` positions only. */
  readonly slidingLayers?: readonly boolean[];
  /** Positions a sliding layer sees, its own included. */
  readonly slidingWindow?: number;
  /** RoPE base of the sliding layers (Gemma's `rope_local_base_freq`). */
  readonly localRopeTheta?: number;
  /**
   * Per layer, whether its q and k are rotated (default: every layer; SmolLM3 leaves every
   * fourth layer without positions, its `no_rope_layers`).
   */
  readonly ropeLayers?: readonly boolean[];
  /**
   * The attention's and the MLP's outputs are multiplied by this before their residual adds
   * (Granite's `residual_multiplier`): folded into `o_proj` and `down_proj` when converted.
   */
  readonly residualScale?: number;
  /**
   * The logits are divided by this (Granite's `logits_scaling`): folded into the classifier's
   * weights when converted, a tied embedding's too (the graph scales the embeddings back).
   */
  readonly logitScale?: number;
  /**
   * The leading dims of each head that RoPE turns (Phi-4-mini's `partial_rotary_factor`); the
   * rest pass unturned. Default: all of them.
   */
  readonly rotaryDim?: number;
  /**
   * The turned dims of q and k are multiplied by this (LongRoPE's attention factor, by which it
   * scales cos and sin): folded into `q_proj` and `k_proj` when converted.
   */
  readonly ropeAttentionFactor?: number;
}

/** What a weight is used for; decides which storage types it may take. */
export type WeightRole = "linear" | "embedding" | "norm" | "bias" | "rope";

/** A weight of the model under its Hugging Face name, with its logical shape. */
export interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly role: WeightRole;
}

/** How each weight is stored in the archive. */
export type WeightDType = "f32" | "f16" | "q40";

/** Name of the computed inverse RoPE frequencies (as HF names the buffer). */
export const INV_FREQ_NAME = "model.rotary_emb.inv_freq";

/** Name of the sliding layers' inverse RoPE frequencies, when their base differs. */
export const LOCAL_INV_FREQ_NAME = "model.rotary_emb_local.inv_freq";

/** Name of the output projection; absent from the archive when embeddings are tied. */
export const LM_HEAD_NAME = "lm_head.weight";

/** Name of the token embedding. */
export const EMBED_NAME = "model.embed_tokens.weight";

function fail(file: string, message: string): never {
  throw new RangeError(`${file}: ${message}`);
}

/** What a config field holds, for an error: its JSON, or that it is missing. */
function found(json: Record<string, unknown>, key: string): string {
  return key in json ? `found ${JSON.stringify(json[key])}` : "it is missing";
}

function int(json: Record<string, unknown>, key: string, file: string, fallback?: number): number {
  const v = json[key] ?? fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
    fail(file, `field '${key}' must be a positive integer, ${found(json, key)}`);
  }
  return v;
}

function num(json: Record<string, unknown>, key: string, file: string, fallback: number): number {
  const v = json[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    fail(file, `field '${key}' must be a number, ${found(json, key)}`);
  }
  return v;
}

/**
 * Reads a Hugging Face `config.json` of the Llama family into a frozen config.
 *
 * @throws {TypeError} for an architecture outside the family, naming it and the supported ones
 * @throws {RangeError} for a config the graph cannot express (sliding window, MLP bias, ...)
 */
export function llamaConfigFromHf(json: Record<string, unknown>, file: string): LlamaConfig {
  const architectures = json.architectures;
  const architecture = Array.isArray(architectures) && typeof architectures[0] === "string"
    ? architectures[0]
    : Object.keys(MODEL_TYPE_OF).find((a) => MODEL_TYPE_OF[a] === json.model_type) ??
      String(json.model_type ?? "unknown");
  const modelType = Object.hasOwn(MODEL_TYPE_OF, architecture)
    ? MODEL_TYPE_OF[architecture]!
    : undefined;
  if (modelType === undefined) {
    throw new TypeError(
      `${file}: unsupported architecture '${architecture}'; supported: ${
        Object.keys(MODEL_TYPE_OF).join(", ")
      }`,
    );
  }
  const gemma = modelType === "gemma3_text";
  const act = gemma ? undefined : json.hidden_act ?? "silu";
  if (act !== undefined && act !== "silu") {
    fail(file, `hidden_act '${act}' is not supported (only silu)`);
  }
  if (json.mlp_bias === true) fail(file, "mlp_bias is not supported");
  const maxPositions = int(json, "max_position_embeddings", file, 2048);
  const window = json.sliding_window;
  const windowUsed = modelType === "qwen2" || modelType === "qwen3" || modelType === "smollm3"
    ? json.use_sliding_window === true
    : typeof window === "number" && window < maxPositions;
  if (windowUsed && !gemma && modelType !== "phi3" && modelType !== "mistral") {
    fail(file, `sliding-window attention (sliding_window ${window}) is not supported`);
  }
  const hiddenSize = int(json, "hidden_size", file);
  const numHeads = int(json, "num_attention_heads", file);
  const numKvHeads = int(json, "num_key_value_heads", file, numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(
      file,
      `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  const headDim = int(json, "head_dim", file, Math.floor(hiddenSize / numHeads));
  if (headDim % 2 !== 0) fail(file, `head_dim ${headDim} is odd`);
  const attentionBias = json.attention_bias === true;
  const numLayers = int(json, "num_hidden_layers", file);
  const sizes = {
    architecture,
    modelType,
    vocabSize: int(json, "vocab_size", file),
    hiddenSize,
    intermediateSize: int(json, "intermediate_size", file),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    maxPositions,
    rmsNormEps: num(json, "rms_norm_eps", file, 1e-6),
  };
  if (gemma) {
    return makeLlamaConfig({
      ...sizes,
      ...gemmaConfig(json, file, numLayers, hiddenSize, maxPositions),
      tieWordEmbeddings: json.tie_word_embeddings !== false,
      qkvBias: attentionBias,
      oBias: attentionBias,
      qkNorm: true,
    });
  }
  if (modelType === "phi3") {
    return makeLlamaConfig({
      ...sizes,
      ...phi3Config(json, file, sizes),
      ropeTheta: num(json, "rope_theta", file, 10000),
      tieWordEmbeddings: json.tie_word_embeddings === true,
      qkvBias: false,
      oBias: false,
    });
  }
  return makeLlamaConfig({
    ...sizes,
    ropeTheta: num(json, "rope_theta", file, 10000),
    ropeScaling: ropeScalingFromHf(json.rope_scaling, file),
    tieWordEmbeddings: json.tie_word_embeddings === true,
    qkvBias: modelType === "qwen2" || attentionBias,
    oBias: modelType !== "qwen2" && attentionBias,
    qkNorm: modelType === "qwen3",
    ...(modelType === "smollm3" ? { ropeLayers: smolLM3RopeLayers(json, file, numLayers) } : {}),
    ...(modelType === "granite" ? graniteScales(json, file) : {}),
    // As transformers runs Mistral: every layer sees the last `sliding_window` positions.
    ...(windowUsed ? windowEverywhere(numLayers, window as number) : {}),
  });
}

/** Every layer a sliding one of `window` positions (Mistral's and Phi-3's `sliding_window`). */
export function windowEverywhere(
  numLayers: number,
  window: number,
): Pick<LlamaConfig, "slidingLayers" | "slidingWindow"> {
  return { slidingLayers: Array<boolean>(numLayers).fill(true), slidingWindow: window };
}

/**
 * Granite's four multipliers: of the embeddings, the attention scores (in place of 1/√head_dim),
 * the residual branches and (as a divisor) the logits.
 */
function graniteScales(
  json: Record<string, unknown>,
  file: string,
): Pick<LlamaConfig, "embedScale" | "attentionScale" | "residualScale" | "logitScale"> {
  const positive = (key: string) => {
    const v = num(json, key, file, 1);
    if (!(v > 0)) fail(file, `field '${key}' must be positive, ${found(json, key)}`);
    return v;
  };
  return {
    embedScale: positive("embedding_multiplier"),
    attentionScale: positive("attention_multiplier"),
    residualScale: positive("residual_multiplier"),
    logitScale: positive("logits_scaling"),
  };
}

/**
 * Phi-3's and Phi-4-mini's RoPE and window: the leading `partial_rotary_factor` of each head
 * turned, and with LongRoPE (`rope_scaling` of type `longrope`) the short factors and the
 * attention factor, which hold up to `original_max_position_embeddings`: the context is cut to
 * it (past it LongRoPE turns to its long factors, which are not read). Every layer sees the last
 * `sliding_window` positions, when the context is longer.
 */
function phi3Config(
  json: Record<string, unknown>,
  file: string,
  { headDim, numLayers, maxPositions }: Pick<LlamaConfig, "headDim" | "numLayers" | "maxPositions">,
): Pick<
  LlamaConfig,
  | "maxPositions"
  | "ropeScaling"
  | "rotaryDim"
  | "ropeFreqFactors"
  | "ropeAttentionFactor"
  | "slidingLayers"
  | "slidingWindow"
> {
  const partial = num(json, "partial_rotary_factor", file, 1);
  const rotaryDim = Math.floor(headDim * partial);
  if (!(partial > 0 && partial <= 1) || rotaryDim < 2 || rotaryDim % 2 !== 0) {
    fail(
      file,
      `partial_rotary_factor ${partial} turns ${rotaryDim} of ${headDim} dims (must be even)`,
    );
  }
  const scaling = (json.rope_scaling ?? null) as Record<string, unknown> | null;
  const type = scaling === null ? "default" : scaling.rope_type ?? scaling.type;
  let positions = maxPositions;
  let rope: Pick<LlamaConfig, "ropeFreqFactors" | "ropeAttentionFactor"> = {};
  if (type === "longrope" || type === "su") {
    const original = int(
      scaling!,
      "original_max_position_embeddings",
      file,
      int(json, "original_max_position_embeddings", file, maxPositions),
    );
    const short = scaling!.short_factor;
    if (
      !Array.isArray(short) || short.length !== rotaryDim / 2 ||
      !short.every((f) => typeof f === "number" && f > 0)
    ) {
      fail(file, `rope_scaling.short_factor must hold ${rotaryDim / 2} positive numbers`);
    }
    const factor = maxPositions / original;
    const given = scaling!.attention_factor;
    rope = {
      ropeFreqFactors: short as number[],
      ropeAttentionFactor: typeof given === "number"
        ? given
        : factor <= 1
        ? 1
        : Math.sqrt(1 + Math.log(factor) / Math.log(original)),
    };
    positions = Math.min(maxPositions, original);
  } else if (type !== "default") {
    fail(file, `rope_scaling type '${type}' is not supported for Phi-3 (supported: longrope)`);
  }
  const window = json.sliding_window;
  const sliding = typeof window === "number" && window < positions
    ? windowEverywhere(numLayers, window)
    : {};
  return {
    maxPositions: positions,
    ropeScaling: null,
    ...(rotaryDim === headDim ? {} : { rotaryDim }),
    ...rope,
    ...sliding,
  };
}

/** Where one projection sits in Phi-3's fused weights: rows `start` to `start + rows` of `total`. */
export interface FusedPart {
  /** The fused weight's HF name (`qkv_proj`, `gate_up_proj`). */
  readonly fused: string;
  readonly start: number;
  readonly rows: number;
  readonly total: number;
}

/**
 * Phi-3 stores q, k and v as one `qkv_proj` and the MLP's gate and up as one `gate_up_proj`:
 * where the weight `name` sits in those; undefined for a weight stored whole.
 */
export function phi3Part(name: string, config: LlamaConfig): FusedPart | undefined {
  if (config.modelType !== "phi3") return undefined;
  const m = /^(model\.layers\.\d+)\.(?:self_attn\.([qkv])_proj|mlp\.(gate|up)_proj)\.weight$/
    .exec(name);
  if (m === null) return undefined;
  const [, layer, projection, half] = m;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const ff = config.intermediateSize;
  if (projection === undefined) {
    const fused = `${layer}.mlp.gate_up_proj.weight`;
    return { fused, start: half === "gate" ? 0 : ff, rows: ff, total: 2 * ff };
  }
  return {
    fused: `${layer}.self_attn.qkv_proj.weight`,
    start: { q: 0, k: q, v: q + kv }[projection as "q" | "k" | "v"],
    rows: projection === "q" ? q : kv,
    total: q + 2 * kv,
  };
}

/** Per layer, whether it has RoPE: all but every `interval`-th (SmolLM3's default, 4). */
export function everyNthWithoutRope(numLayers: number, interval: number): boolean[] {
  return Array.from({ length: numLayers }, (_, i) => (i + 1) % interval !== 0);
}

/**
 * SmolLM3's layers with RoPE: `no_rope_layers` (1 for a layer with RoPE, 0 for one without),
 * or, without the list, every layer but each `no_rope_layer_interval`-th (default 4).
 */
function smolLM3RopeLayers(
  json: Record<string, unknown>,
  file: string,
  numLayers: number,
): boolean[] {
  const list = json.no_rope_layers;
  if (list === undefined || list === null) {
    return everyNthWithoutRope(numLayers, int(json, "no_rope_layer_interval", file, 4));
  }
  if (!Array.isArray(list) || list.length !== numLayers || list.some((v) => v !== 0 && v !== 1)) {
    fail(
      file,
      `no_rope_layers must list 0 or 1 for each of the ${numLayers} layers, ${
        found(json, "no_rope_layers")
      }`,
    );
  }
  return list.map((v) => v === 1);
}

/**
 * What sets Gemma 3's text models apart (`Gemma3ForCausalLM`): norms of 1 + w, four of them a
 * layer, a tanh-approximated GELU gate, embeddings scaled by √hidden, attention scaled by
 * `query_pre_attn_scalar`, and sliding-window layers with a RoPE base of their own.
 */
function gemmaConfig(
  json: Record<string, unknown>,
  file: string,
  numLayers: number,
  hiddenSize: number,
  maxPositions: number,
): Pick<
  LlamaConfig,
  | "ropeTheta"
  | "ropeScaling"
  | "normOffset"
  | "sandwichNorms"
  | "activation"
  | "embedScale"
  | "attentionScale"
  | "slidingLayers"
  | "slidingWindow"
  | "localRopeTheta"
> {
  const act = json.hidden_activation ?? json.hidden_act ?? "gelu_pytorch_tanh";
  if (act !== "gelu_pytorch_tanh") {
    fail(file, `hidden_activation '${act}' is not supported (only gelu_pytorch_tanh)`);
  }
  for (const key of ["attn_logit_softcapping", "final_logit_softcapping"]) {
    if (json[key] !== null && json[key] !== undefined) {
      fail(file, `${key} ${JSON.stringify(json[key])} is not supported (only null)`);
    }
  }
  if (json.use_bidirectional_attention === true) {
    fail(file, "use_bidirectional_attention is not supported (a causal language model only)");
  }
  const types = json.layer_types;
  let sliding: boolean[];
  if (Array.isArray(types)) {
    if (types.length !== numLayers) {
      fail(file, `layer_types has ${types.length} entries for ${numLayers} layers`);
    }
    sliding = types.map((t, i) => {
      if (t !== "sliding_attention" && t !== "full_attention") {
        fail(file, `layer_types[${i}] '${t}' is not supported`);
      }
      return t === "sliding_attention";
    });
  } else {
    const pattern = int(json, "sliding_window_pattern", file, 6);
    sliding = Array.from({ length: numLayers }, (_, i) => (i + 1) % pattern !== 0);
  }
  // Newer configs nest RoPE per layer type; older ones give the two bases apart.
  const nested = json.rope_parameters as Record<string, Record<string, unknown>> | undefined;
  const rope = (type: string, key: string, fallback: number): number => {
    const params = nested?.[type];
    if (params === undefined) return num(json, key, file, fallback);
    if ((params.rope_type ?? "default") !== "default") {
      fail(file, `rope_parameters.${type}.rope_type '${params.rope_type}' is not supported`);
    }
    return num(params, "rope_theta", file, fallback);
  };
  if (nested === undefined && ropeScalingFromHf(json.rope_scaling, file) !== null) {
    fail(file, "rope_scaling is not supported for Gemma 3 (only null)");
  }
  const window = int(json, "sliding_window", file, 512);
  return {
    ropeTheta: rope("full_attention", "rope_theta", 1_000_000),
    ropeScaling: null,
    localRopeTheta: rope("sliding_attention", "rope_local_base_freq", 10_000),
    ...gemmaLayers(hiddenSize),
    normOffset: 1,
    attentionScale: 1 / Math.sqrt(num(json, "query_pre_attn_scalar", file, 256)),
    slidingLayers: sliding,
    slidingWindow: Math.min(window, maxPositions),
  };
}

/**
 * What every Gemma 3 source shares: four norms a layer, the tanh GELU gate, embeddings times
 * √hidden (its norms, scales and windows are for each source to say).
 */
export function gemmaLayers(
  hiddenSize: number,
): Pick<LlamaConfig, "sandwichNorms" | "activation" | "embedScale"> {
  return { sandwichNorms: true, activation: "gelu_tanh", embedScale: Math.sqrt(hiddenSize) };
}

function ropeScalingFromHf(value: unknown, file: string): RopeScaling | null {
  if (value === null || value === undefined) return null;
  const json = value as Record<string, unknown>;
  const type = json.rope_type ?? json.type;
  if (type === "default") return null;
  if (type === "linear") return { type, factor: num(json, "factor", file, 1) };
  if (type === "llama3") {
    return {
      type,
      factor: num(json, "factor", file, 8),
      lowFreqFactor: num(json, "low_freq_factor", file, 1),
      highFreqFactor: num(json, "high_freq_factor", file, 4),
      originalMaxPositions: num(json, "original_max_position_embeddings", file, 8192),
    };
  }
  fail(file, `rope_scaling type '${type}' is not supported (supported: llama3, linear)`);
}

/** Freezes a config after checking the relations between its sizes. */
export function makeLlamaConfig(config: LlamaConfig): LlamaConfig {
  if (config.numHeads % config.numKvHeads !== 0) {
    throw new RangeError(
      `num_heads ${config.numHeads} is not a multiple of num_kv_heads ${config.numKvHeads}`,
    );
  }
  return Object.freeze({ ...config });
}

/** The HF `config.json` that describes `config` (written into the archive). */
export function llamaConfigToHf(
  config: LlamaConfig,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const scaling = config.ropeScaling;
  return {
    architectures: [config.architecture],
    model_type: config.modelType,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    max_position_embeddings: config.maxPositions,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: scaling === null
      ? null
      : scaling.type === "linear"
      ? { rope_type: "linear", factor: scaling.factor }
      : {
        rope_type: "llama3",
        factor: scaling.factor,
        low_freq_factor: scaling.lowFreqFactor,
        high_freq_factor: scaling.highFreqFactor,
        original_max_position_embeddings: scaling.originalMaxPositions,
      },
    tie_word_embeddings: config.tieWordEmbeddings,
    attention_bias: config.oBias,
    hidden_act: config.activation === "gelu_tanh" ? "gelu_pytorch_tanh" : "silu",
    torch_dtype: "float32",
    ...extra,
  };
}

/** The weights of a model in archive order, under their Hugging Face names. */
/**
 * Checks that the weights named `names` (HF names) hold the layers `config` declares, before
 * they are listed one by one: a config claiming 2^40 layers would exhaust memory listing them.
 *
 * @throws {RangeError} naming `file` when the config declares more layers than the weights hold
 */
export function checkLayerCount(config: LlamaConfig, names: Iterable<string>, file: string): void {
  let layers = 0;
  for (const name of names) {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    if (m !== null) layers = Math.max(layers, Number(m[1]) + 1);
  }
  if (config.numLayers > layers) {
    throw new RangeError(
      `${file}: the config declares ${config.numLayers} layers, the weights hold ${layers}`,
    );
  }
}

export function llamaWeights(config: LlamaConfig): WeightSpec[] {
  const { hiddenSize: d, intermediateSize: ff, headDim: hd } = config;
  const q = config.numHeads * hd;
  const kv = config.numKvHeads * hd;
  const turned = (config.rotaryDim ?? hd) / 2;
  const out: WeightSpec[] = [
    { name: EMBED_NAME, shape: [config.vocabSize, d], role: "embedding" },
    { name: INV_FREQ_NAME, shape: [turned], role: "rope" },
    ...(config.localRopeTheta === undefined
      ? []
      : [{ name: LOCAL_INV_FREQ_NAME, shape: [turned], role: "rope" as const }]),
  ];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    out.push({ name: `${p}.input_layernorm.weight`, shape: [d], role: "norm" });
    out.push({ name: `${p}.self_attn.q_proj.weight`, shape: [q, d], role: "linear" });
    out.push({ name: `${p}.self_attn.k_proj.weight`, shape: [kv, d], role: "linear" });
    out.push({ name: `${p}.self_attn.v_proj.weight`, shape: [kv, d], role: "linear" });
    if (config.qkvBias) {
      out.push({ name: `${p}.self_attn.q_proj.bias`, shape: [q], role: "bias" });
      out.push({ name: `${p}.self_attn.k_proj.bias`, shape: [kv], role: "bias" });
      out.push({ name: `${p}.self_attn.v_proj.bias`, shape: [kv], role: "bias" });
    }
    if (config.qkNorm) {
      out.push({ name: `${p}.self_attn.q_norm.weight`, shape: [hd], role: "norm" });
      out.push({ name: `${p}.self_attn.k_norm.weight`, shape: [hd], role: "norm" });
    }
    out.push({ name: `${p}.self_attn.o_proj.weight`, shape: [d, q], role: "linear" });
    if (config.oBias) out.push({ name: `${p}.self_attn.o_proj.bias`, shape: [d], role: "bias" });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [d], role: "norm" });
    if (config.sandwichNorms) {
      out.push({ name: `${p}.pre_feedforward_layernorm.weight`, shape: [d], role: "norm" });
      out.push({ name: `${p}.post_feedforward_layernorm.weight`, shape: [d], role: "norm" });
    }
    out.push({ name: `${p}.mlp.gate_proj.weight`, shape: [ff, d], role: "linear" });
    out.push({ name: `${p}.mlp.up_proj.weight`, shape: [ff, d], role: "linear" });
    out.push({ name: `${p}.mlp.down_proj.weight`, shape: [d, ff], role: "linear" });
  }
  out.push({ name: "model.norm.weight", shape: [d], role: "norm" });
  if (!config.tieWordEmbeddings) {
    out.push({ name: LM_HEAD_NAME, shape: [config.vocabSize, d], role: "linear" });
  }
  return out;
}

/**
 * Inverse RoPE frequencies in f32, as HF `_compute_default_rope_parameters` and
 * `_compute_llama3_parameters` compute them.
 */
export function ropeInverseFrequencies(
  config: LlamaConfig,
  theta: number = config.ropeTheta,
): Float32Array {
  const dims = config.rotaryDim ?? config.headDim;
  const half = dims / 2;
  const out = new Float32Array(half); // (rotary_dim / 2,)
  for (let i = 0; i < half; i++) {
    const exponent = Math.fround(Math.fround(2 * i) / dims);
    out[i] = Math.fround(1 / Math.fround(Math.pow(theta, exponent)));
  }
  const scaling = config.ropeScaling;
  if (scaling?.type === "linear") {
    for (let i = 0; i < half; i++) out[i] = Math.fround(out[i]! / scaling.factor);
  } else if (scaling?.type === "llama3") {
    const { factor, lowFreqFactor: low, highFreqFactor: high } = scaling;
    const lowWavelen = scaling.originalMaxPositions / low;
    const highWavelen = scaling.originalMaxPositions / high;
    for (let i = 0; i < half; i++) {
      const f = out[i]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) {
        out[i] = Math.fround(f / factor);
      } else if (wavelen >= highWavelen) {
        const smooth = (scaling.originalMaxPositions / wavelen - low) / (high - low);
        out[i] = Math.fround((1 - smooth) * (f / factor) + smooth * f);
      }
    }
  }
  const factors = config.ropeFreqFactors;
  if (factors !== undefined) {
    for (let i = 0; i < half; i++) out[i] = Math.fround(out[i]! / (factors[i] ?? 1));
  }
  return out;
}
