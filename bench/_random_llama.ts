/** The random-weight models used by the benches. */
import { join } from "node:path";
import { convertModel } from "../models/convert.ts";
import { concatBytes } from "../src/storage/bytes.ts";
import { safetensorsBytes, type TestTensor } from "../tests/convert_fixtures.ts";

/** The hyperparameters of a random llama2.c checkpoint. */
export interface RandomLlamaShape {
  readonly dim: number;
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly vocab: number;
  readonly seqLen: number;
  /** Whether the classifier is the token embedding (else its own matrix, in Q4_0 like the others). */
  readonly tied: boolean;
}

/** llama2.c's stories110M (untied classifier). */
export const STORIES110M_SHAPE: RandomLlamaShape = {
  dim: 768,
  hidden: 2048,
  layers: 12,
  heads: 12,
  kvHeads: 12,
  vocab: 32000,
  seqLen: 1024,
  tied: false,
};

/** SmolLM2-135M: a 49152-token vocabulary, grouped-query attention, tied classifier. */
export const SMOLLM2_135M_SHAPE: RandomLlamaShape = {
  dim: 576,
  hidden: 1536,
  layers: 30,
  heads: 9,
  kvHeads: 3,
  vocab: 49152,
  seqLen: 1024,
  tied: true,
};

/**
 * Converts a random-weight llama2.c checkpoint of the stories110M shape (Q4_0 linears when
 * `q40`) into the archive at `path`, which appears only once complete; returns the seconds taken.
 */
export function writeRandom110MArchive(path: string, q40: boolean): Promise<number> {
  return writeRandomLlamaArchive(path, STORIES110M_SHAPE, q40);
}

/**
 * Converts a random-weight llama2.c checkpoint of `shape` (Q4_0 linears when `q40`) into the
 * archive at `path`, which appears only once complete; returns the seconds taken.
 */
export async function writeRandomLlamaArchive(
  path: string,
  shape: RandomLlamaShape,
  q40: boolean,
): Promise<number> {
  const work = await Deno.makeTempDir({ prefix: "rill_bench_random_" });
  try {
    const t0 = performance.now();
    const { checkpoint, tokenizer } = await writeRandomLlama(work, shape);
    await convertModel(checkpoint, `${work}/model.nnef.tar`, { tokenizer, q40 });
    await Deno.rename(`${work}/model.nnef.tar`, path);
    return (performance.now() - t0) / 1000;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/** A llama2.c checkpoint of `shape` with random weights, and a tokenizer. */
async function writeRandomLlama(
  dir: string,
  shape: RandomLlamaShape,
): Promise<{ checkpoint: string; tokenizer: string }> {
  const { dim, hidden, layers, heads, kvHeads, vocab, seqLen, tied } = shape;
  const headDim = dim / heads;
  // Legacy llama2.c layout; a negative vocab size means an unshared classifier (wcls at the
  // end).
  const floats = vocab * dim + layers * dim * 2 + layers * dim * dim * 2 +
    layers * dim * kvHeads * headDim * 2 + layers * hidden * dim * 3 + dim +
    seqLen * headDim + (tied ? 0 : vocab * dim);
  const checkpoint = `${dir}/model.bin`;
  using file = await Deno.open(checkpoint, { write: true, create: true, truncate: true });
  await file.write(
    new Uint8Array(
      Int32Array.of(dim, hidden, layers, heads, kvHeads, tied ? vocab : -vocab, seqLen).buffer,
    ),
  );
  const chunk = new Float32Array(1 << 20);
  let seed = 12345;
  for (let done = 0; done < floats; done += chunk.length) {
    const n = Math.min(chunk.length, floats - done);
    for (let i = 0; i < n; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      chunk[i] = (seed / 2 ** 32 - 0.5) * 0.04;
    }
    await file.write(new Uint8Array(chunk.buffer, 0, n * 4));
  }
  const parts: Uint8Array[] = [new Uint8Array(Int32Array.of(16).buffer)];
  const enc = new TextEncoder();
  for (let i = 0; i < vocab; i++) {
    const text = enc.encode(i < 3 ? ["<unk>", "<s>", "</s>"][i]! : `t${i}`);
    const head = new DataView(new ArrayBuffer(8));
    head.setFloat32(0, -i, true);
    head.setInt32(4, text.length, true);
    parts.push(new Uint8Array(head.buffer), text);
  }
  const tokenizer = `${dir}/tokenizer.bin`;
  await Deno.writeFile(tokenizer, concatBytes(parts));
  return { checkpoint, tokenizer };
}

/** Gemma 3 270M's text model: 18 layers (every sixth global, the others a 512-position window). */
const GEMMA3_270M = {
  hidden: 640,
  intermediate: 2048,
  layers: 18,
  heads: 4,
  kvHeads: 1,
  headDim: 256,
  vocab: 262144,
  window: 512,
};

/**
 * Converts a random-weight Hugging Face folder of Gemma 3 270M's shape (f16, with SmolLM2's
 * tokenizer, whose ids it covers) to a Q4_0 archive at `path`, which appears only once
 * complete; returns the seconds taken.
 */
export async function writeRandomGemma3Archive(path: string): Promise<number> {
  const work = await Deno.makeTempDir({ prefix: "rill_bench_gemma3_" });
  try {
    const t0 = performance.now();
    const g = GEMMA3_270M;
    let seed = 12345;
    const random = (shape: number[], scale: number): TestTensor["values"] => {
      const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < values.length; i++) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        values[i] = (seed / 2 ** 32 - 0.5) * scale;
      }
      return values;
    };
    const tensors: TestTensor[] = [];
    const add = (name: string, shape: number[], scale = 0.1) =>
      tensors.push({ name, shape, values: random(shape, scale) });
    add("model.embed_tokens.weight", [g.vocab, g.hidden]);
    const [q, kv] = [g.heads * g.headDim, g.kvHeads * g.headDim];
    for (let l = 0; l < g.layers; l++) {
      const p = `model.layers.${l}`;
      for (const norm of ["input", "post_attention", "pre_feedforward", "post_feedforward"]) {
        add(`${p}.${norm}_layernorm.weight`, [g.hidden], 0.2);
      }
      add(`${p}.self_attn.q_proj.weight`, [q, g.hidden]);
      add(`${p}.self_attn.k_proj.weight`, [kv, g.hidden]);
      add(`${p}.self_attn.v_proj.weight`, [kv, g.hidden]);
      add(`${p}.self_attn.o_proj.weight`, [g.hidden, q]);
      add(`${p}.self_attn.q_norm.weight`, [g.headDim], 0.2);
      add(`${p}.self_attn.k_norm.weight`, [g.headDim], 0.2);
      add(`${p}.mlp.gate_proj.weight`, [g.intermediate, g.hidden]);
      add(`${p}.mlp.up_proj.weight`, [g.intermediate, g.hidden]);
      add(`${p}.mlp.down_proj.weight`, [g.hidden, g.intermediate]);
    }
    add("model.norm.weight", [g.hidden], 0.2);
    const folder = join(work, "hf");
    await Deno.mkdir(folder);
    await Deno.writeFile(join(folder, "model.safetensors"), safetensorsBytes(tensors, "F16"));
    await Deno.writeTextFile(
      join(folder, "config.json"),
      JSON.stringify({
        architectures: ["Gemma3ForCausalLM"],
        model_type: "gemma3_text",
        hidden_activation: "gelu_pytorch_tanh",
        hidden_size: g.hidden,
        intermediate_size: g.intermediate,
        num_hidden_layers: g.layers,
        num_attention_heads: g.heads,
        num_key_value_heads: g.kvHeads,
        head_dim: g.headDim,
        query_pre_attn_scalar: g.headDim,
        max_position_embeddings: 32768,
        rms_norm_eps: 1e-6,
        rope_theta: 1e6,
        rope_local_base_freq: 1e4,
        sliding_window: g.window,
        sliding_window_pattern: 6,
        vocab_size: g.vocab,
        attn_logit_softcapping: null,
        final_logit_softcapping: null,
      }),
    );
    const tokenizer = new URL("../../shared/fixtures/tokenizers/smollm2/", import.meta.url);
    for (const file of ["tokenizer.json", "tokenizer_config.json"]) {
      await Deno.copyFile(new URL(file, tokenizer), join(folder, file));
    }
    await convertModel(folder, `${work}/model.nnef.tar`, { q40: true });
    await Deno.rename(`${work}/model.nnef.tar`, path);
    return (performance.now() - t0) / 1000;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}
