import assert from "node:assert/strict";
import { join } from "node:path";
import { ggufToHfTokenizer } from "../src/tokenizer/gguf_to_hf.ts";
import { loadTokenizer } from "../src/tokenizer/load_tokenizer.ts";
import type { GgufFile, GgufValue } from "../src/formats/gguf.ts";
import { tokenizerFiles } from "./tokenizer_files.ts";

function gguf(entries: [string, GgufValue][]): GgufFile {
  return { version: 3, metadata: new Map(entries), tensors: [], alignment: 32, dataOffset: 0 };
}

Deno.test("tokenizerFiles writes ggufToHfTokenizer's files with the context length", async () => {
  const model = gguf([
    ["tokenizer.ggml.model", "gpt2"],
    ["tokenizer.ggml.pre", "qwen2"],
    ["tokenizer.ggml.tokens", ["a", "b", "ab", "<|im_end|>"]],
    ["tokenizer.ggml.token_type", [1, 1, 1, 3]],
    ["tokenizer.ggml.merges", ["a b"]],
    ["tokenizer.ggml.eos_token_id", 3],
    ["tokenizer.chat_template", "{{ messages[0]['content'] }}"],
  ]);
  const files = tokenizerFiles(ggufToHfTokenizer(model, "m.gguf"), 8192);
  assert.deepEqual(files.map((f) => f.name), ["tokenizer.json", "tokenizer_config.json"]);
  const [json, config] = files.map((f) => JSON.parse(new TextDecoder().decode(f.bytes)));
  const expected = ggufToHfTokenizer(model, "m.gguf");
  assert.equal(config.chat_template, "{{ messages[0]['content'] }}");
  assert.deepEqual(json, expected.tokenizerJson);
  assert.deepEqual(config, { ...expected.tokenizerConfig, model_max_length: 8192 });
  const dir = await Deno.makeTempDir();
  try {
    for (const file of files) await Deno.writeFile(join(dir, file.name), file.bytes);
    const tokenizer = await loadTokenizer(join(dir, "tokenizer.json"));
    assert.deepEqual(tokenizer.encode("abab<|im_end|>", { addBos: false }), [2, 2, 3]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ggufToHfTokenizer refuses a tokenizer model tokenizerFiles cannot write", () => {
  assert.throws(
    () =>
      tokenizerFiles(ggufToHfTokenizer(gguf([["tokenizer.ggml.model", "bert"]]), "m.gguf"), 512),
    { name: "TypeError", message: /m\.gguf: tokenizer model 'bert' is not supported/ },
  );
});
