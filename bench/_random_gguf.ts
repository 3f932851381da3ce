/**
 * Random-weight Llama models written as GGUF, every matrix (linears, embedding, classifier) in
 * Q4_0 and the norms in f32, with the Llama 2 vocabulary; and their Rill archives, converted by
 * `deno task convert` from the same file, so that every engine reads the same Q4_0 blocks.
 */
import { GGML_TYPE, readGguf } from "../src/formats/gguf.ts";
import {
  type GgufMetadataValue,
  type GgufTensorSource,
  writeGguf,
} from "../src/formats/gguf_writer.ts";
import { Q40_BLOCK_BYTES, Q40_BLOCK_LEN } from "../src/nnef/q40.ts";
import { openFileSource } from "../src/storage/file_source.ts";
import { f32ToF16 } from "../src/tensor/f16.ts";

/** Bumped whenever the bytes {@link writeRandomLlamaGguf} writes change: it keys the cache. */
export const RANDOM_GGUF_VERSION = 1;

/** The sizes of a Llama model (or of a Qwen3, the same with its q and k heads normed). */
export interface LlamaShape {
  /** Short name, e.g. `110m`. */
  readonly name: string;
  /** GGUF architecture (default `llama`). */
  readonly arch?: "llama" | "qwen3";
  /** Size of a head (default dim / heads). */
  readonly headDim?: number;
  readonly dim: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly hidden: number;
  readonly vocab: number;
  readonly context: number;
}

/**
 * llama2.c's stories110M, TinyLlama 1.1B, and Qwen3 0.6B with the Llama 2 vocabulary (32000
 * pieces in place of 151936: the rest of the model as it is).
 */
export const LLAMA_SHAPES: Readonly<Record<"110m" | "1b" | "qwen3", LlamaShape>> = {
  "110m": {
    name: "110m",
    dim: 768,
    layers: 12,
    heads: 12,
    kvHeads: 12,
    hidden: 2048,
    vocab: 32000,
    context: 2048,
  },
  "1b": {
    name: "1b",
    dim: 2048,
    layers: 22,
    heads: 32,
    kvHeads: 4,
    hidden: 5632,
    vocab: 32000,
    context: 2048,
  },
  "qwen3": {
    name: "qwen3",
    arch: "qwen3",
    dim: 1024,
    layers: 28,
    heads: 16,
    kvHeads: 8,
    headDim: 128,
    hidden: 3072,
    vocab: 32000,
    context: 2048,
  },
};

const VOCAB = new URL(
  "../../shared/fixtures/tokenizers/llama-cpp-vocab/ggml-vocab-llama-spm.gguf",
  import.meta.url,
).pathname;

/** RMS of the random weights, about that of a trained model's initialisation. */
const WEIGHT_RMS = 0.02;

/**
 * Random Q4_0 blocks for `count` values: uniform 4-bit codes and scales of random sign with
 * magnitudes spread around the one that gives {@link WEIGHT_RMS}.
 */
export function randomQ40Blocks(count: number, seed: number): Uint8Array {
  const blocks = count / Q40_BLOCK_LEN;
  const words = new Uint32Array(Math.ceil((blocks * Q40_BLOCK_BYTES) / 4));
  let s = (seed * 0x9e3779b9 + 1) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s >>> 0;
  }
  const out = new Uint8Array(words.buffer, 0, blocks * Q40_BLOCK_BYTES);
  // Codes 0..15 stand for -8..7: their RMS is sqrt(21.5).
  const base = WEIGHT_RMS / Math.sqrt(21.5);
  for (let b = 0; b < blocks; b++) {
    const at = b * Q40_BLOCK_BYTES;
    const bits = out[at]! | (out[at + 1]! << 8);
    const magnitude = base * (0.5 + (bits & 0x7fff) / 0x8000);
    const d = f32ToF16(bits & 0x8000 ? -magnitude : magnitude);
    out[at] = d & 0xff;
    out[at + 1] = d >> 8;
  }
  return out;
}

function q40(name: string, dims: [number, number], seed: number): GgufTensorSource {
  const count = dims[0] * dims[1];
  return {
    name,
    dims,
    type: GGML_TYPE.Q4_0,
    byteLength: (count / Q40_BLOCK_LEN) * Q40_BLOCK_BYTES,
    produce: () => randomQ40Blocks(count, seed),
  };
}

function ones(name: string, size: number): GgufTensorSource {
  return {
    name,
    dims: [size],
    type: GGML_TYPE.F32,
    byteLength: size * 4,
    produce: () => new Uint8Array(new Float32Array(size).fill(1).buffer),
  };
}

/** The tensors of `shape` in llama.cpp's names and order, GGML dims (row length first). */
function tensors(shape: LlamaShape): GgufTensorSource[] {
  const { dim, hidden, vocab } = shape;
  const headDim = shape.headDim ?? dim / shape.heads;
  const qDim = headDim * shape.heads;
  const kvDim = headDim * shape.kvHeads;
  let seed = 1;
  const out = [
    q40("token_embd.weight", [dim, vocab], seed++),
    ones("output_norm.weight", dim),
    q40("output.weight", [dim, vocab], seed++),
  ];
  for (let l = 0; l < shape.layers; l++) {
    const p = `blk.${l}`;
    out.push(
      ones(`${p}.attn_norm.weight`, dim),
      q40(`${p}.attn_q.weight`, [dim, qDim], seed++),
      q40(`${p}.attn_k.weight`, [dim, kvDim], seed++),
      q40(`${p}.attn_v.weight`, [dim, kvDim], seed++),
      ...(shape.arch === "qwen3"
        ? [ones(`${p}.attn_q_norm.weight`, headDim), ones(`${p}.attn_k_norm.weight`, headDim)]
        : []),
      q40(`${p}.attn_output.weight`, [qDim, dim], seed++),
      ones(`${p}.ffn_norm.weight`, dim),
      q40(`${p}.ffn_gate.weight`, [dim, hidden], seed++),
      q40(`${p}.ffn_down.weight`, [hidden, dim], seed++),
      q40(`${p}.ffn_up.weight`, [dim, hidden], seed++),
    );
  }
  return out;
}

/** The Llama 2 vocabulary (SentencePiece, 32000 pieces) of the shared llama.cpp vocab fixture. */
async function llamaVocabulary(): Promise<Record<string, GgufMetadataValue>> {
  const source = await openFileSource(VOCAB);
  try {
    const m = (await readGguf(source)).metadata;
    const get = <T>(key: string): T => {
      const v = m.get(key);
      if (v === undefined) throw new RangeError(`${VOCAB}: no metadata '${key}'`);
      return v as T;
    };
    return {
      "tokenizer.ggml.model": { type: "string", value: get("tokenizer.ggml.model") },
      "tokenizer.ggml.tokens": { type: "strings", value: get("tokenizer.ggml.tokens") },
      "tokenizer.ggml.scores": { type: "f32s", value: get("tokenizer.ggml.scores") },
      "tokenizer.ggml.token_type": { type: "i32s", value: get("tokenizer.ggml.token_type") },
      "tokenizer.ggml.bos_token_id": { type: "u32", value: get("tokenizer.ggml.bos_token_id") },
      "tokenizer.ggml.eos_token_id": { type: "u32", value: get("tokenizer.ggml.eos_token_id") },
      "tokenizer.ggml.unknown_token_id": {
        type: "u32",
        value: get("tokenizer.ggml.unknown_token_id"),
      },
      "tokenizer.ggml.add_bos_token": { type: "bool", value: true },
      "tokenizer.ggml.add_eos_token": { type: "bool", value: false },
    };
  } finally {
    await source.close();
  }
}

/** Writes a random-weight Llama of `shape` as GGUF at `path` (see the module doc). */
export async function writeRandomLlamaGguf(path: string, shape: LlamaShape): Promise<void> {
  if (shape.vocab !== 32000) {
    throw new RangeError(`The Llama 2 vocabulary has 32000 pieces, shape has ${shape.vocab}`);
  }
  const arch = shape.arch ?? "llama";
  const headDim = shape.headDim ?? shape.dim / shape.heads;
  const u32 = (value: number): GgufMetadataValue => ({ type: "u32", value });
  const metadata: Record<string, GgufMetadataValue> = {
    "general.architecture": { type: "string", value: arch },
    "general.name": { type: "string", value: `random-${arch}-${shape.name}` },
    // 2: every matrix in Q4_0 (llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_0).
    "general.file_type": u32(2),
    [`${arch}.context_length`]: u32(shape.context),
    [`${arch}.embedding_length`]: u32(shape.dim),
    [`${arch}.block_count`]: u32(shape.layers),
    [`${arch}.feed_forward_length`]: u32(shape.hidden),
    [`${arch}.attention.head_count`]: u32(shape.heads),
    [`${arch}.attention.head_count_kv`]: u32(shape.kvHeads),
    ...(shape.headDim === undefined ? {} : {
      [`${arch}.attention.key_length`]: u32(headDim),
      [`${arch}.attention.value_length`]: u32(headDim),
    }),
    [`${arch}.rope.dimension_count`]: u32(headDim),
    [`${arch}.attention.layer_norm_rms_epsilon`]: { type: "f32", value: 1e-5 },
    [`${arch}.rope.freq_base`]: { type: "f32", value: arch === "qwen3" ? 1000000 : 10000 },
    ...await llamaVocabulary(),
  };
  await writeGguf(path, metadata, tensors(shape));
}

/** A race model: its GGUF and the Rill archive converted from it. */
export interface RaceModel {
  readonly shape: LlamaShape;
  readonly gguf: string;
  readonly archive: string;
}

/**
 * The GGUF and archive of `shape` under `dir`, made on first use and kept (keyed by
 * {@link RANDOM_GGUF_VERSION}); `log` hears what is made and how long it took.
 */
export async function raceModel(
  dir: string,
  shape: LlamaShape,
  log: (line: string) => void,
): Promise<RaceModel> {
  const folder = `${dir}/models-v${RANDOM_GGUF_VERSION}`;
  await Deno.mkdir(folder, { recursive: true });
  const arch = shape.arch ?? "llama";
  const stem = shape.name.startsWith(arch) ? shape.name : `${arch}_${shape.name}`;
  const gguf = `${folder}/${stem}_q40.gguf`;
  const archive = `${folder}/${stem}_q40.nnef.tar`;
  if (!await exists(gguf)) {
    const t0 = performance.now();
    await writeRandomLlamaGguf(`${gguf}.part`, shape);
    await Deno.rename(`${gguf}.part`, gguf);
    log(`wrote ${gguf} in ${seconds(t0)}`);
  }
  if (!await exists(archive)) {
    const t0 = performance.now();
    const root = new URL("..", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "convert", gguf, "--output", archive, "--quiet"],
      cwd: root,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`deno task convert ${gguf} failed (exit ${out.code})`);
    log(`converted it with deno task convert to ${archive} in ${seconds(t0)}`);
  }
  return { shape, gguf, archive };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function seconds(t0: number): string {
  return `${((performance.now() - t0) / 1000).toFixed(1)} s`;
}
