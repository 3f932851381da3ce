/** Test helpers: a tiny SmolLM2-shaped model folder and a loopback Hugging Face hub. */
import { join } from "node:path";
import { convertModel } from "../models/convert.ts";
import { randomValues, safetensorsBytes, type TestTensor } from "./convert_fixtures.ts";

/** The real SmolLM2 tokenizer files (fixtures). */
export const SMOLLM2_TOKENIZER = new URL(
  "../../shared/fixtures/tokenizers/smollm2/",
  import.meta.url,
).pathname;

const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
];

/** Shape of the random model: SmolLM2's architecture, tiny sizes. */
const CONFIG = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  hidden_act: "silu",
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  rope_scaling: null,
  tie_word_embeddings: true,
  attention_bias: false,
  mlp_bias: false,
  bos_token_id: 1,
  eos_token_id: 2,
  vocab_size: 49152,
  torch_dtype: "float16",
};

/**
 * Three of SmolLM2's special tokens (8 to 10, issue markers) and the names they take in a
 * vocabulary of a fill-in-the-middle model (Qwen2.5-Coder's).
 */
export const FIM_RENAMES: readonly (readonly [string, string])[] = [
  ["<issue_start>", "<|fim_prefix|>"],
  ["<issue_comment>", "<|fim_suffix|>"],
  ["<issue_closed>", "<|fim_middle|>"],
];

/**
 * Two of SmolLM2's special tokens (11 and 12, notebook markers) and the names they take in a
 * vocabulary of Mistral's, whose tool calls are `[TOOL_CALLS]...` or `[TOOL_CALLS]name[ARGS]...`.
 */
export const MISTRAL_RENAMES: readonly (readonly [string, string])[] = [
  ["<jupyter_start>", "[TOOL_CALLS]"],
  ["<jupyter_text>", "[ARGS]"],
];

/** SmolLM2's special token given the name of Granite 3.x's call marker. */
export const GRANITE_RENAMES: readonly (readonly [string, string])[] = [
  ["<jupyter_start>", "<|tool_call|>"],
];

/** `text` (a tokenizer file) with the tokens of `renames` renamed. */
export function withNames(text: string, renames: readonly (readonly [string, string])[]): string {
  return renames.reduce((t, [from, to]) => t.replaceAll(`"${from}"`, JSON.stringify(to)), text);
}

/** `text` (a tokenizer file) with the tokens of {@link FIM_RENAMES} renamed. */
export function withFimNames(text: string): string {
  return withNames(text, FIM_RENAMES);
}

/**
 * Writes a SmolLM2-shaped HF folder (random F16 weights, real tokenizer) into `folder`; with
 * `renames` (such as {@link FIM_RENAMES}), its vocabulary has special tokens renamed.
 */
export async function writeTinySmolLM2(
  folder: string,
  renames: readonly (readonly [string, string])[] = [],
): Promise<void> {
  await Deno.mkdir(folder, { recursive: true });
  const c = CONFIG;
  const kv = c.num_key_value_heads * c.head_dim;
  const tensors: TestTensor[] = [];
  let seed = 1;
  const add = (name: string, shape: number[], scale = 0.1) =>
    tensors.push({
      name,
      shape,
      values: randomValues(shape.reduce((a, b) => a * b, 1), seed++, scale),
    });
  add("model.embed_tokens.weight", [c.vocab_size, c.hidden_size], 0.5);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [c.hidden_size], 1);
    add(`${p}.self_attn.q_proj.weight`, [c.hidden_size, c.hidden_size]);
    add(`${p}.self_attn.k_proj.weight`, [kv, c.hidden_size]);
    add(`${p}.self_attn.v_proj.weight`, [kv, c.hidden_size]);
    add(`${p}.self_attn.o_proj.weight`, [c.hidden_size, c.hidden_size]);
    add(`${p}.post_attention_layernorm.weight`, [c.hidden_size], 1);
    add(`${p}.mlp.gate_proj.weight`, [c.intermediate_size, c.hidden_size]);
    add(`${p}.mlp.up_proj.weight`, [c.intermediate_size, c.hidden_size]);
    add(`${p}.mlp.down_proj.weight`, [c.hidden_size, c.intermediate_size]);
  }
  add("model.norm.weight", [c.hidden_size], 1);
  await Deno.writeFile(join(folder, "model.safetensors"), safetensorsBytes(tensors, "F16"));
  await Deno.writeTextFile(join(folder, "config.json"), JSON.stringify(CONFIG, null, 2));
  for (const file of TOKENIZER_FILES) {
    const text = await Deno.readTextFile(join(SMOLLM2_TOKENIZER, file));
    await Deno.writeTextFile(join(folder, file), withNames(text, renames));
  }
}

/**
 * The random SmolLM2-shaped model converted to a Q4_0 archive with its tokenizer and chat
 * template, at `dir/tiny-smollm2.nnef.tar`; returns that path. Its 49k vocabulary makes each
 * token cost about as much as a real small model's sampling, and its random weights rarely
 * end an answer early.
 */
export async function writeTinySmolLM2Archive(dir: string): Promise<string> {
  const folder = join(dir, "tiny-smollm2");
  await writeTinySmolLM2(folder);
  const path = join(dir, "tiny-smollm2.nnef.tar");
  await convertModel(folder, path, { q40: true });
  return path;
}

/** A loopback hub serving `folder` as `/{repo}/resolve/{revision}/{file}`; counts requests. */
export interface TestHub extends AsyncDisposable {
  readonly url: string;
  readonly requests: string[];
  close(): Promise<void>;
}

/** Starts a hub for `repo` on 127.0.0.1 (port 0). */
export function startTestHub(repo: string, folder: string): TestHub {
  const requests: string[] = [];
  const prefix = `/${repo}/resolve/main/`;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    requests.push(path);
    if (!path.startsWith(prefix)) return new Response("Repository not found", { status: 404 });
    const file = path.slice(prefix.length);
    if (file.includes("..")) return new Response("bad path", { status: 400 });
    try {
      const bytes = await Deno.readFile(join(folder, file));
      return new Response(bytes, { headers: { "Content-Length": String(bytes.length) } });
    } catch {
      return new Response("Entry not found", { status: 404 });
    }
  });
  const close = async () => {
    await server.shutdown();
  };
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The address of a hub that is not there: a loopback port just closed. */
export function unreachableHub(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return `http://127.0.0.1:${port}`;
}
