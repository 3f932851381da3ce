import assert from "node:assert/strict";
import { join } from "node:path";
import { convertModel } from "../models/convert.ts";
import { ggufBytes, type GgufTensorData } from "../src/formats/gguf_writer.ts";
import { convertCommand } from "../cli/convert.ts";
import {
  fixture,
  randomValues,
  safetensorsBytes,
  type TestTensor,
  withDir,
} from "./convert_fixtures.ts";

const CONFIG = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 32,
  intermediate_size: 64,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  num_hidden_layers: 1,
  vocab_size: 16,
  max_position_embeddings: 128,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: true,
};

function tensors(): TestTensor[] {
  const shapes: [string, number[]][] = [
    ["model.embed_tokens.weight", [16, 32]],
    ["model.layers.0.input_layernorm.weight", [32]],
    ["model.layers.0.self_attn.q_proj.weight", [32, 32]],
    ["model.layers.0.self_attn.k_proj.weight", [16, 32]],
    ["model.layers.0.self_attn.v_proj.weight", [16, 32]],
    ["model.layers.0.self_attn.o_proj.weight", [32, 32]],
    ["model.layers.0.post_attention_layernorm.weight", [32]],
    ["model.layers.0.mlp.gate_proj.weight", [64, 32]],
    ["model.layers.0.mlp.up_proj.weight", [64, 32]],
    ["model.layers.0.mlp.down_proj.weight", [32, 64]],
    ["model.norm.weight", [32]],
  ];
  return shapes.map(([name, shape], i) => ({
    name,
    shape,
    values: randomValues(shape.reduce((a, b) => a * b, 1), i + 1, 0.1),
  }));
}

async function hfFolder(dir: string, config: Record<string, unknown> = CONFIG): Promise<void> {
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
  await Deno.copyFile(fixture("tokenizers/smollm2/tokenizer.json"), join(dir, "tokenizer.json"));
  await Deno.writeFile(join(dir, "model.safetensors"), safetensorsBytes(tensors(), "F32"));
}

/** Runs a conversion that must fail, and checks that the output folder stayed empty. */
async function assertFails(input: string, pattern: RegExp, kind: ErrorConstructor) {
  const out = await Deno.makeTempDir();
  try {
    await assert.rejects(() => convertModel(input, join(out, "model.nnef.tar")), (e: Error) => {
      assert.ok(e instanceof kind, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    });
    const left: string[] = [];
    for await (const entry of Deno.readDir(out)) left.push(entry.name);
    assert.deepEqual(left, []);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

Deno.test("convertModel rejects a truncated safetensors file, naming it", async () => {
  await withDir(async (dir) => {
    await hfFolder(dir);
    const path = join(dir, "model.safetensors");
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 100));
    await assertFails(
      dir,
      /model\.safetensors: truncated: tensor 'model\.norm\.weight'/,
      RangeError,
    );
  });
});

Deno.test("convertModel rejects a safetensors header whose offsets disagree with the shape", async () => {
  await withDir(async (dir) => {
    await hfFolder(dir);
    const path = join(dir, "model.safetensors");
    const bytes = await Deno.readFile(path);
    const text = new TextDecoder().decode(bytes);
    // Shift the end of the first tensor by 4 bytes without changing the header's length.
    const lied = text.replace('"data_offsets":[0,2048]', '"data_offsets":[0,2052]');
    assert.notEqual(lied, text);
    await Deno.writeFile(path, new TextEncoder().encode(lied));
    await assertFails(
      dir,
      /model\.safetensors: tensor 'model\.embed_tokens\.weight': data_offsets \[0, 2052\] hold 2052 bytes, shape \[16, 32\] of F32 needs 2048/,
      RangeError,
    );
  });
});

Deno.test("convertModel rejects a sharded model whose index names a missing shard", async () => {
  await withDir(async (dir) => {
    await hfFolder(dir);
    const all = tensors();
    await Deno.remove(join(dir, "model.safetensors"));
    await Deno.writeFile(
      join(dir, "model-00001-of-00002.safetensors"),
      safetensorsBytes(all.slice(0, 5), "F32"),
    );
    const weightMap = Object.fromEntries(
      all.map((t, i) => [t.name, `model-0000${i < 5 ? 1 : 2}-of-00002.safetensors`]),
    );
    await Deno.writeTextFile(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: weightMap }),
    );
    await assertFails(
      dir,
      /model-00002-of-00002\.safetensors: missing shard named in .*model\.safetensors\.index\.json/,
      RangeError,
    );
  });
});

Deno.test("convertModel rejects a config of an unknown architecture, listing the supported ones", async () => {
  await withDir(async (dir) => {
    await hfFolder(dir, { ...CONFIG, architectures: ["GPT2LMHeadModel"], model_type: "gpt2" });
    await assertFails(
      dir,
      /config\.json: unsupported architecture 'GPT2LMHeadModel'; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM/,
      TypeError,
    );
  });
});

function ggufTensor(name: string, dims: number[], type: number): GgufTensorData {
  const count = dims.reduce((a, b) => a * b, 1);
  return { name, dims, type, bytes: new Uint8Array(type === 0 ? 4 * count : 2 * count) };
}

function tinyGguf(qType: number): Uint8Array {
  return ggufBytes({
    "general.architecture": { type: "string", value: "llama" },
    "llama.embedding_length": { type: "u32", value: 32 },
    "llama.block_count": { type: "u32", value: 1 },
    "llama.feed_forward_length": { type: "u32", value: 64 },
    "llama.attention.head_count": { type: "u32", value: 2 },
    "llama.context_length": { type: "u32", value: 128 },
  }, [
    ggufTensor("token_embd.weight", [32, 16], 1),
    ggufTensor("blk.0.attn_q.weight", [32, 32], qType),
  ]);
}

Deno.test("convertModel rejects a GGUF tensor of an unknown GGML type, naming file and tensor", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "bad.gguf");
    await Deno.writeFile(path, tinyGguf(99));
    await assertFails(
      path,
      /Unknown GGML tensor type 99 of tensor 'blk\.0\.attn_q\.weight' in .*bad\.gguf/,
      TypeError,
    );
  });
});

Deno.test("convertModel rejects a GGUF tensor of a known type it cannot convert", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "k.gguf");
    // IQ2_XXS (16): 256-element rows of 66 bytes.
    const bytes = ggufBytes({ "general.architecture": { type: "string", value: "llama" } }, [
      { name: "blk.0.attn_q.weight", dims: [256, 1], type: 16, bytes: new Uint8Array(66) },
    ]);
    await Deno.writeFile(path, bytes);
    await assertFails(
      path,
      /k\.gguf: tensor 'blk\.0\.attn_q\.weight' has GGML type IQ2_XXS; supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS/,
      TypeError,
    );
  });
});

Deno.test("convertCommand names a missing input and what it takes", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/main.ts", "convert"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 2);
  assert.match(
    new TextDecoder().decode(stderr),
    /^rill convert: the input is missing: give a Hugging Face folder, a GGUF file or a llama2\.c checkpoint \(with --tokenizer tokenizer\.bin\)/,
  );
});

Deno.test("convertCommand prints the error and exits with 1 on bad input", async () => {
  await withDir(async (dir) => {
    await hfFolder(dir, { ...CONFIG, architectures: ["MambaForCausalLM"] });
    const output = join(dir, "x.nnef.tar");
    assert.equal(await convertCommand([dir, "-o", output, "--quiet"]), 1);
    await assert.rejects(() => Deno.stat(output), Deno.errors.NotFound);
  });
});

Deno.test("convertModel refuses --q40 when no linear weight's input size is a multiple of 32", async () => {
  await withDir(async (dir) => {
    const config = { ...CONFIG, hidden_size: 24, intermediate_size: 40, num_attention_heads: 2 };
    const shapes: [string, number[]][] = [
      ["model.embed_tokens.weight", [16, 24]],
      ["model.layers.0.input_layernorm.weight", [24]],
      ["model.layers.0.self_attn.q_proj.weight", [24, 24]],
      ["model.layers.0.self_attn.k_proj.weight", [12, 24]],
      ["model.layers.0.self_attn.v_proj.weight", [12, 24]],
      ["model.layers.0.self_attn.o_proj.weight", [24, 24]],
      ["model.layers.0.post_attention_layernorm.weight", [24]],
      ["model.layers.0.mlp.gate_proj.weight", [40, 24]],
      ["model.layers.0.mlp.up_proj.weight", [40, 24]],
      ["model.layers.0.mlp.down_proj.weight", [24, 40]],
      ["model.norm.weight", [24]],
    ];
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
    await Deno.copyFile(fixture("tokenizers/smollm2/tokenizer.json"), join(dir, "tokenizer.json"));
    await Deno.writeFile(
      join(dir, "model.safetensors"),
      safetensorsBytes(
        shapes.map(([name, shape], i) => ({
          name,
          shape,
          values: randomValues(shape.reduce((a, b) => a * b, 1), i + 1, 0.1),
        })),
        "F32",
      ),
    );
    const out = join(dir, "out.nnef.tar");
    await assert.rejects(
      () => convertModel(dir, out, { q40: true }),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          "--q40: no linear weight has an input size that is a multiple of 32 (they have 24, " +
            "40), so nothing would be stored as Q4_0; convert without --q40",
    );
    await assert.rejects(() => Deno.stat(out), Deno.errors.NotFound);
  });
});
