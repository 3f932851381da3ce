import { openFileSource } from "../src/storage/file_source.ts";
import {
  GGML_TYPE,
  type GgufFile,
  type GgufTensorInfo,
  type GgufValue,
  readGguf,
} from "../src/formats/gguf.ts";
import {
  checkLayerCount,
  EMBED_NAME,
  everyNthWithoutRope,
  gemmaLayers,
  type LlamaConfig,
  llamaConfigToHf,
  llamaWeights,
  LM_HEAD_NAME,
  makeLlamaConfig,
  phi3Part,
  type RopeScaling,
  windowEverywhere,
} from "./llama.ts";
import { floatsFromBytes } from "../src/formats/safetensors.ts";
import {
  dequantizeIQ4NL,
  dequantizeIQ4XS,
  dequantizeQ2K,
  dequantizeQ3K,
  dequantizeQ41,
  dequantizeQ4K,
  dequantizeQ50,
  dequantizeQ51,
  dequantizeQ5K,
  dequantizeQ6K,
  dequantizeQ80,
} from "../src/formats/ggml_quants.ts";
import {
  f16BitsOf,
  interleavedToHalves,
  type ModelSource,
  type SourceTensor,
  type SourceType,
} from "./source.ts";

/** GGUF `general.architecture` values the converter accepts, with their HF class. */
const GGUF_ARCHITECTURES: Record<string, string> = {
  llama: "LlamaForCausalLM",
  qwen2: "Qwen2ForCausalLM",
  qwen3: "Qwen3ForCausalLM",
  gemma3: "Gemma3ForCausalLM",
  smollm3: "SmolLM3ForCausalLM",
  phi3: "Phi3ForCausalLM",
  granite: "GraniteForCausalLM",
};

const SUPPORTED_TYPES: Record<number, SourceType> = {
  [GGML_TYPE.F32]: "f32",
  [GGML_TYPE.F16]: "f16",
  [GGML_TYPE.BF16]: "bf16",
  [GGML_TYPE.Q4_0]: "q40",
  [GGML_TYPE.Q8_0]: "q80",
  [GGML_TYPE.Q4_1]: "q41",
  [GGML_TYPE.Q5_0]: "q50",
  [GGML_TYPE.Q5_1]: "q51",
  [GGML_TYPE.IQ4_NL]: "iq4nl",
  [GGML_TYPE.IQ4_XS]: "iq4xs",
  [GGML_TYPE.Q2_K]: "q2k",
  [GGML_TYPE.Q3_K]: "q3k",
  [GGML_TYPE.Q4_K]: "q4k",
  [GGML_TYPE.Q5_K]: "q5k",
  [GGML_TYPE.Q6_K]: "q6k",
};

/** The readers of the types widened to f32 when converted. */
const WIDENED: Partial<Record<SourceType, (bytes: Uint8Array) => Float32Array>> = {
  q80: dequantizeQ80,
  q41: dequantizeQ41,
  q50: dequantizeQ50,
  q51: dequantizeQ51,
  iq4nl: dequantizeIQ4NL,
  iq4xs: dequantizeIQ4XS,
  q2k: dequantizeQ2K,
  q3k: dequantizeQ3K,
  q4k: dequantizeQ4K,
  q5k: dequantizeQ5K,
  q6k: dequantizeQ6K,
};

const LAYER_NAMES: Record<string, string> = {
  "attn_norm.weight": "input_layernorm.weight",
  "attn_q.weight": "self_attn.q_proj.weight",
  "attn_k.weight": "self_attn.k_proj.weight",
  "attn_v.weight": "self_attn.v_proj.weight",
  "attn_q.bias": "self_attn.q_proj.bias",
  "attn_k.bias": "self_attn.k_proj.bias",
  "attn_v.bias": "self_attn.v_proj.bias",
  "attn_output.weight": "self_attn.o_proj.weight",
  "attn_output.bias": "self_attn.o_proj.bias",
  "attn_q_norm.weight": "self_attn.q_norm.weight",
  "attn_k_norm.weight": "self_attn.k_norm.weight",
  "ffn_norm.weight": "post_attention_layernorm.weight",
  "ffn_gate.weight": "mlp.gate_proj.weight",
  "ffn_up.weight": "mlp.up_proj.weight",
  "ffn_down.weight": "mlp.down_proj.weight",
};

/** Gemma's four norms a layer, as llama.cpp names them. */
const GEMMA_LAYER_NAMES: Record<string, string> = {
  ...LAYER_NAMES,
  "post_attention_norm.weight": "post_attention_layernorm.weight",
  "ffn_norm.weight": "pre_feedforward_layernorm.weight",
  "post_ffw_norm.weight": "post_feedforward_layernorm.weight",
};

/** Phi-3's fused projections, as llama.cpp names them: q, k and v, and the MLP's gate and up. */
const PHI3_LAYER_NAMES: Record<string, string> = {
  ...LAYER_NAMES,
  "attn_qkv.weight": "self_attn.qkv_proj.weight",
  "ffn_up.weight": "mlp.gate_up_proj.weight",
};

/**
 * The Hugging Face name of a llama.cpp tensor name of architecture `arch`, or undefined when it
 * has none.
 */
export function hfNameOfGguf(name: string, arch = "llama"): string | undefined {
  if (name === "token_embd.weight") return EMBED_NAME;
  if (name === "output_norm.weight") return "model.norm.weight";
  if (name === "output.weight") return LM_HEAD_NAME;
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  if (m === null) return undefined;
  const names = arch === "gemma3"
    ? GEMMA_LAYER_NAMES
    : arch === "phi3"
    ? PHI3_LAYER_NAMES
    : LAYER_NAMES;
  const rest = names[m[2]!];
  return rest === undefined ? undefined : `model.layers.${m[1]}.${rest}`;
}

function meta(gguf: GgufFile, key: string, file: string): GgufValue {
  const v = gguf.metadata.get(key);
  if (v === undefined) throw new RangeError(`${file}: missing GGUF metadata '${key}'`);
  return v;
}

function metaInt(gguf: GgufFile, key: string, file: string, fallback?: number): number {
  const v = gguf.metadata.get(key) ?? fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
    if (v === undefined) meta(gguf, key, file);
    throw new RangeError(`${file}: GGUF metadata '${key}' is ${String(v)}, not a positive integer`);
  }
  return v;
}

function metaNum(gguf: GgufFile, key: string, fallback: number): number {
  const v = gguf.metadata.get(key);
  return typeof v === "number" ? v : fallback;
}

function ggufConfig(gguf: GgufFile, file: string): LlamaConfig {
  const arch = String(gguf.metadata.get("general.architecture") ?? "unknown");
  const architecture = GGUF_ARCHITECTURES[arch];
  if (architecture === undefined) {
    throw new TypeError(
      `${file}: unsupported architecture '${arch}'; supported: ${
        Object.keys(GGUF_ARCHITECTURES).join(", ")
      }`,
    );
  }
  const embed = gguf.tensors.find((t) => t.name === "token_embd.weight");
  if (embed === undefined) throw new RangeError(`${file}: no tensor 'token_embd.weight'`);
  const hiddenSize = metaInt(gguf, `${arch}.embedding_length`, file);
  const numHeads = metaInt(gguf, `${arch}.attention.head_count`, file);
  const numKvHeads = metaInt(gguf, `${arch}.attention.head_count_kv`, file, numHeads);
  const headDim = metaInt(gguf, `${arch}.attention.key_length`, file, hiddenSize / numHeads);
  const ropeDims = metaInt(gguf, `${arch}.rope.dimension_count`, file, headDim);
  const phi3 = arch === "phi3";
  if (ropeDims !== headDim && !(phi3 && ropeDims < headDim && ropeDims % 2 === 0)) {
    throw new RangeError(`${file}: partial RoPE (${ropeDims} of ${headDim} dims) is not supported`);
  }
  const scalingType = gguf.metadata.get(`${arch}.rope.scaling.type`);
  let ropeScaling: RopeScaling | null = null;
  if (scalingType === "linear") {
    ropeScaling = { type: "linear", factor: metaNum(gguf, `${arch}.rope.scaling.factor`, 1) };
  } else if (scalingType !== undefined && scalingType !== "none") {
    throw new RangeError(`${file}: rope scaling '${String(scalingType)}' is not supported`);
  }
  const numLayers = metaInt(gguf, `${arch}.block_count`, file);
  const gemma = arch === "gemma3";
  if (gemma && ropeScaling !== null) {
    throw new RangeError(`${file}: rope scaling is not supported for gemma3`);
  }
  return makeLlamaConfig({
    architecture,
    modelType: gemma ? "gemma3_text" : arch,
    vocabSize: embed.shape[0]!,
    hiddenSize,
    intermediateSize: metaInt(gguf, `${arch}.feed_forward_length`, file),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    maxPositions: metaInt(gguf, `${arch}.context_length`, file, 2048),
    rmsNormEps: Math.fround(metaNum(gguf, `${arch}.attention.layer_norm_rms_epsilon`, 1e-5)),
    ropeTheta: metaNum(gguf, `${arch}.rope.freq_base`, 10000),
    ropeScaling,
    tieWordEmbeddings: !gguf.tensors.some((t) => t.name === "output.weight"),
    qkvBias: gguf.tensors.some((t) => t.name === "blk.0.attn_q.bias"),
    oBias: gguf.tensors.some((t) => t.name === "blk.0.attn_output.bias"),
    qkNorm: gguf.tensors.some((t) => t.name === "blk.0.attn_q_norm.weight"),
    ...(gemma ? gemmaGguf(gguf, file, numLayers, hiddenSize, numHeads, headDim) : {}),
    // As llama.cpp runs smollm3, whose files hold no key for it: every fourth layer without RoPE.
    ...(arch === "smollm3" ? { ropeLayers: everyNthWithoutRope(numLayers, 4) } : {}),
    ...(phi3 ? phi3Gguf(gguf, file, numLayers, headDim, ropeDims) : {}),
    ...(arch === "granite" ? graniteGguf(gguf) : {}),
  });
}

/**
 * Granite's four multipliers, as llama.cpp's converter renames them: of the embeddings, the
 * attention scores (in place of 1/√head_dim), the residual branches and (a divisor) the logits.
 */
function graniteGguf(
  gguf: GgufFile,
): Pick<LlamaConfig, "embedScale" | "attentionScale" | "residualScale" | "logitScale"> {
  const attention = metaNum(gguf, "granite.attention.scale", 0);
  return {
    embedScale: metaNum(gguf, "granite.embedding_scale", 1),
    ...(attention > 0 ? { attentionScale: attention } : {}),
    residualScale: metaNum(gguf, "granite.residual_scale", 1),
    logitScale: metaNum(gguf, "granite.logit_scale", 1),
  };
}

/**
 * What a phi3 GGUF says of RoPE and the window: the dims turned, and with LongRoPE (its
 * `rope_factors_short.weight`, read with the weights) the original context, to which the
 * context is cut as from a Hugging Face config, and the attention factor llama.cpp's converter
 * wrote.
 */
function phi3Gguf(
  gguf: GgufFile,
  file: string,
  numLayers: number,
  headDim: number,
  ropeDims: number,
): Partial<LlamaConfig> {
  const context = metaInt(gguf, "phi3.context_length", file, 4096);
  const longRope = gguf.tensors.some((t) => t.name === "rope_factors_short.weight");
  const original = metaInt(gguf, "phi3.rope.scaling.original_context_length", file, context);
  const positions = longRope ? Math.min(context, original) : context;
  const factor = context / original;
  const window = gguf.metadata.get("phi3.attention.sliding_window");
  return {
    maxPositions: positions,
    ...(ropeDims === headDim ? {} : { rotaryDim: ropeDims }),
    ...(longRope
      ? {
        ropeAttentionFactor: metaNum(
          gguf,
          "phi3.rope.scaling.attn_factor",
          factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original)),
        ),
      }
      : {}),
    ...(typeof window === "number" && window > 0 && window < positions
      ? windowEverywhere(numLayers, window)
      : {}),
  };
}

/**
 * What a gemma3 GGUF leaves to the runtime, as llama.cpp runs it: its norms already hold 1 + w
 * (so no offset), every sixth layer global and the others sliding with a RoPE base of 10,000,
 * embeddings times √hidden, and scores scaled by 1/√head_dim (1/√(hidden / heads) for the
 * 62-layer 27B).
 */
function gemmaGguf(
  gguf: GgufFile,
  file: string,
  numLayers: number,
  hiddenSize: number,
  numHeads: number,
  headDim: number,
): Partial<LlamaConfig> {
  return {
    ...gemmaLayers(hiddenSize),
    attentionScale: 1 / Math.sqrt(numLayers === 62 ? hiddenSize / numHeads : headDim),
    slidingLayers: Array.from({ length: numLayers }, (_, i) => (i + 1) % 6 !== 0),
    slidingWindow: metaInt(gguf, "gemma3.attention.sliding_window", file, 512),
    localRopeTheta: 10_000,
  };
}

/**
 * Opens a GGUF v2/v3 file (llama, qwen2, qwen3, gemma3, smollm3, phi3 or granite) as HF-named
 * weights. Q4_0 tensors are carried over as their blocks, F16 ones as their bits; F32, BF16,
 * Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS and the k-quants Q2_K to Q6_K are widened to f32 (and stored
 * again as the conversion's options say: Q4_0 by default). llama.cpp stores the q/k rows of
 * `llama`, `smollm3` and `granite` models in interleaved RoPE order: they are put back in HF's
 * rotate-half order.
 *
 * @throws {TypeError} for an unsupported architecture or tensor type, naming file and tensor
 */
export async function openGguf(path: string): Promise<{ model: ModelSource; gguf: GgufFile }> {
  const source = await openFileSource(path);
  try {
    const gguf = await readGguf(source);
    const byHf = new Map<string, GgufTensorInfo>();
    for (const info of gguf.tensors) {
      const type = SUPPORTED_TYPES[info.type];
      if (type === undefined) {
        throw new TypeError(
          `${path}: tensor '${info.name}' has GGML type ${info.typeName}; supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS`,
        );
      }
      const hf = hfNameOfGguf(info.name, String(gguf.metadata.get("general.architecture")));
      if (hf !== undefined) byHf.set(hf, info);
    }
    let config = ggufConfig(gguf, path);
    // Phi-3's LongRoPE keeps its short factors as llama.cpp's rope_freqs.
    const ropeFreqs = gguf.tensors.find((t) =>
      t.name === "rope_freqs.weight" || t.name === "rope_factors_short.weight"
    );
    if (ropeFreqs !== undefined) {
      const bytes = await source.read(gguf.dataOffset + ropeFreqs.offset, ropeFreqs.byteSize);
      const factors = ropeFreqs.type === GGML_TYPE.F32
        ? floatsFromBytes(bytes, "F32")
        : floatsFromBytes(bytes, "F16");
      const turned = (config.rotaryDim ?? config.headDim) / 2;
      if (factors.length !== turned) {
        throw new RangeError(
          `${path}: tensor '${ropeFreqs.name}' holds ${factors.length} factors, RoPE turns ${turned} pairs`,
        );
      }
      config = makeLlamaConfig({ ...config, ropeFreqFactors: [...factors] });
    }
    checkLayerCount(config, byHf.keys(), path);
    // llama.cpp's converter reorders the q/k rows of these for its adjacent-pair RoPE.
    const permute = ["llama", "smollm3", "granite"].includes(config.modelType);
    const tensors = new Map<string, SourceTensor>();
    for (const spec of llamaWeights(config)) {
      if (spec.role === "rope") continue;
      const info = byHf.get(spec.name) ?? fusedPart(spec.name, config, byHf, path);
      if (info === undefined) {
        throw new RangeError(`${path}: no GGUF tensor for '${spec.name}'`);
      }
      if (info.shape.join(",") !== spec.shape.join(",")) {
        throw new RangeError(
          `${path}: tensor '${info.name}' has shape [${info.shape.join(", ")}], expected [${
            spec.shape.join(", ")
          }]`,
        );
      }
      const sourceType = SUPPORTED_TYPES[info.type]!;
      const heads = !permute
        ? undefined
        : spec.name.endsWith("q_proj.weight")
        ? config.numHeads
        : spec.name.endsWith("k_proj.weight")
        ? config.numKvHeads
        : undefined;
      const offset = gguf.dataOffset + info.offset;
      tensors.set(spec.name, {
        name: spec.name,
        shape: info.shape,
        sourceType,
        async load() {
          let bytes = await source.read(offset, info.byteSize);
          if (heads !== undefined) {
            bytes = interleavedToHalves(bytes, { heads, rowBytes: info.byteSize / info.shape[0]! });
          }
          if (sourceType === "q40") return { kind: "q40", blocks: bytes };
          if (sourceType === "f16") return { kind: "f16", bits: f16BitsOf(bytes) };
          const widen = WIDENED[sourceType];
          const values = widen !== undefined
            ? widen(bytes)
            : floatsFromBytes(bytes, sourceType === "f32" ? "F32" : "BF16");
          return { kind: "f32", values };
        },
      });
    }
    const bos = gguf.metadata.get("tokenizer.ggml.bos_token_id");
    const eos = gguf.metadata.get("tokenizer.ggml.eos_token_id");
    const model: ModelSource = {
      format: "gguf",
      name: String(gguf.metadata.get("general.name") ?? path.split("/").pop()),
      config,
      hfConfig: llamaConfigToHf(config, {
        ...(typeof bos === "number" ? { bos_token_id: bos } : {}),
        ...(typeof eos === "number" ? { eos_token_id: eos } : {}),
      }),
      tensors,
      files: [],
      close: () => source.close(),
    };
    return { model, gguf };
  } catch (e) {
    await source.close();
    throw e;
  }
}

/**
 * Phi-3's q, k and v rows in its `attn_qkv`, and its gate and up rows in its `ffn_up`, as a
 * tensor of their own (rows are whole blocks in every type); undefined when `name` is no part.
 */
function fusedPart(
  name: string,
  config: LlamaConfig,
  byHf: ReadonlyMap<string, GgufTensorInfo>,
  path: string,
): GgufTensorInfo | undefined {
  const part = phi3Part(name, config);
  const fused = part === undefined ? undefined : byHf.get(part.fused);
  if (part === undefined || fused === undefined) return undefined;
  if (fused.shape.length !== 2 || fused.shape[0] !== part.total) {
    throw new RangeError(
      `${path}: tensor '${fused.name}' has shape [${
        fused.shape.join(", ")
      }], expected [${part.total}, ${config.hiddenSize}]`,
    );
  }
  const rowBytes = fused.byteSize / part.total;
  return {
    ...fused,
    dims: [fused.dims[0]!, part.rows],
    shape: [part.rows, fused.shape[1]!],
    offset: fused.offset + part.start * rowBytes,
    byteSize: part.rows * rowBytes,
  };
}
