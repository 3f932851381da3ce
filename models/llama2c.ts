import { openFileSource } from "../src/storage/file_source.ts";
import { floatsFromBytes } from "../src/formats/safetensors.ts";
import { EMBED_NAME, type LlamaConfig, llamaConfigToHf, makeLlamaConfig } from "./llama.ts";
import { interleavedToHalvesF32, type ModelSource, type SourceTensor } from "./source.ts";

const HEADER_BYTES = 28;

/** The seven int32 of a legacy (version 0) llama2.c checkpoint header. */
export interface Llama2cHeader {
  readonly dim: number;
  readonly hiddenDim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  /** Negative in the file when the classifier is stored apart; always positive here. */
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly sharedClassifier: boolean;
}

/** Parses and checks a llama2.c header against the file size. */
export function parseLlama2cHeader(
  bytes: Uint8Array,
  file: { readonly name: string; readonly size: number },
): Llama2cHeader {
  const { name, size: fileSize } = file;
  if (bytes.length < HEADER_BYTES) {
    throw new RangeError(`${name}: truncated llama2.c checkpoint, no 28-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const magic = view.getUint32(0, true);
  if (magic === 0x616b3432) {
    throw new RangeError(
      `${name}: llama2.c export version 1+ ('ak42' magic) is not supported; use the legacy export`,
    );
  }
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = Array.from(
    { length: 7 },
    (_, i) => view.getInt32(4 * i, true),
  ) as [number, number, number, number, number, number, number];
  const fields = {
    dim,
    hidden_dim: hiddenDim,
    n_layers: nLayers,
    n_heads: nHeads,
    seq_len: seqLen,
  };
  for (const [key, value] of Object.entries(fields)) {
    if (value <= 0 || value > 1 << 20) {
      throw new RangeError(`${name}: llama2.c header field ${key} is ${value}`);
    }
  }
  if (nKvHeads <= 0 || nHeads % nKvHeads !== 0 || dim % nHeads !== 0 || vocab === 0) {
    throw new RangeError(
      `${name}: inconsistent llama2.c header (dim ${dim}, n_heads ${nHeads}, n_kv_heads ${nKvHeads}, vocab ${vocab})`,
    );
  }
  const header: Llama2cHeader = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(vocab),
    seqLen,
    sharedClassifier: vocab > 0,
  };
  const expected = HEADER_BYTES + 4 * layout(header).total;
  if (fileSize !== expected) {
    throw new RangeError(
      `${name}: ${
        fileSize < expected ? "truncated" : "oversized"
      } llama2.c checkpoint: the header (dim ${dim}, ${nLayers} layers, vocab ${vocab}) needs ${expected} bytes, the file has ${fileSize}`,
    );
  }
  return header;
}

interface Layout {
  /** Offset in floats of each array, after the header. */
  readonly offsets: Record<string, number>;
  readonly total: number;
}

function layout(h: Llama2cHeader): Layout {
  const headSize = h.dim / h.nHeads;
  const kvDim = h.nKvHeads * headSize;
  const sizes: [string, number][] = [
    ["token_embedding", h.vocabSize * h.dim],
    ["rms_att", h.nLayers * h.dim],
    ["wq", h.nLayers * h.dim * h.dim],
    ["wk", h.nLayers * kvDim * h.dim],
    ["wv", h.nLayers * kvDim * h.dim],
    ["wo", h.nLayers * h.dim * h.dim],
    ["rms_ffn", h.nLayers * h.dim],
    ["w1", h.nLayers * h.hiddenDim * h.dim],
    ["w2", h.nLayers * h.dim * h.hiddenDim],
    ["w3", h.nLayers * h.hiddenDim * h.dim],
    ["rms_final", h.dim],
    ["freq_cis", h.seqLen * headSize],
    ["wcls", h.sharedClassifier ? 0 : h.vocabSize * h.dim],
  ];
  const offsets: Record<string, number> = {};
  let at = 0;
  for (const [name, size] of sizes) {
    offsets[name] = at;
    at += size;
  }
  return { offsets, total: at };
}

/** The HF-style config of a llama2.c checkpoint (eps 1e-5, theta 10000, as run.c computes). */
export function llama2cConfig(h: Llama2cHeader): LlamaConfig {
  return makeLlamaConfig({
    architecture: "LlamaForCausalLM",
    modelType: "llama",
    vocabSize: h.vocabSize,
    hiddenSize: h.dim,
    intermediateSize: h.hiddenDim,
    numLayers: h.nLayers,
    numHeads: h.nHeads,
    numKvHeads: h.nKvHeads,
    headDim: h.dim / h.nHeads,
    maxPositions: h.seqLen,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    tieWordEmbeddings: h.sharedClassifier,
    qkvBias: false,
    oBias: false,
  });
}

/**
 * Opens a legacy llama2.c checkpoint as HF-named weights: w1/w3/w2 become gate/up/down_proj,
 * rms_att/rms_ffn the two layernorms, and the rows of wq/wk are reordered from interleaved
 * RoPE pairs to rotate-half, as HF's `convert_llama_weights_to_hf.py` permutes them.
 */
export async function openLlama2c(path: string): Promise<ModelSource> {
  const source = await openFileSource(path);
  try {
    const size = await source.size();
    const header = parseLlama2cHeader(await source.read(0, Math.min(size, HEADER_BYTES)), {
      name: path,
      size,
    });
    const config = llama2cConfig(header);
    const { offsets } = layout(header);
    const tensors = new Map<string, SourceTensor>();
    const add = (
      name: string,
      array: string,
      index: number,
      shape: number[],
      permuteHeads?: number,
    ) => {
      const count = shape.reduce((a, b) => a * b, 1);
      const offset = HEADER_BYTES + 4 * (offsets[array]! + index * count);
      tensors.set(name, {
        name,
        shape,
        sourceType: "f32",
        async load() {
          let values = floatsFromBytes(await source.read(offset, 4 * count), "F32");
          if (permuteHeads !== undefined) {
            values = interleavedToHalvesF32(values, { heads: permuteHeads, cols: shape[1]! });
          }
          return { kind: "f32", values };
        },
      });
    };
    const d = header.dim;
    const kv = config.numKvHeads * config.headDim;
    const ff = header.hiddenDim;
    add(EMBED_NAME, "token_embedding", 0, [header.vocabSize, d]);
    for (let i = 0; i < header.nLayers; i++) {
      const p = `model.layers.${i}`;
      add(`${p}.input_layernorm.weight`, "rms_att", i, [d]);
      add(`${p}.self_attn.q_proj.weight`, "wq", i, [d, d], header.nHeads);
      add(`${p}.self_attn.k_proj.weight`, "wk", i, [kv, d], header.nKvHeads);
      add(`${p}.self_attn.v_proj.weight`, "wv", i, [kv, d]);
      add(`${p}.self_attn.o_proj.weight`, "wo", i, [d, d]);
      add(`${p}.post_attention_layernorm.weight`, "rms_ffn", i, [d]);
      add(`${p}.mlp.gate_proj.weight`, "w1", i, [ff, d]);
      add(`${p}.mlp.down_proj.weight`, "w2", i, [d, ff]);
      add(`${p}.mlp.up_proj.weight`, "w3", i, [ff, d]);
    }
    add("model.norm.weight", "rms_final", 0, [d]);
    if (!header.sharedClassifier) add("lm_head.weight", "wcls", 0, [header.vocabSize, d]);
    return {
      format: "llama2c",
      name: path.split("/").pop()!.replace(/\.bin$/, ""),
      config,
      hfConfig: llamaConfigToHf(config, { bos_token_id: 1, eos_token_id: 2 }),
      tensors,
      files: [],
      close: () => source.close(),
    };
  } catch (e) {
    await source.close();
    throw e;
  }
}
