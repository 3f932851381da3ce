import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTokenizer } from "../src/engine/load_tokenizer.ts";
import type { GgufFile, GgufValue } from "./gguf.ts";
import { tokenizerFilesFromGguf } from "./tokenizer_files.ts";

const FIXTURES = new URL("../../shared/fixtures/", import.meta.url).pathname;

/** The `tokenizer.ggml.*` metadata llama.cpp's converter writes for SmolLM2's vocabulary. */
async function smollm2Gguf(): Promise<GgufFile> {
  const json = JSON.parse(
    await Deno.readTextFile(join(FIXTURES, "tokenizers/smollm2/tokenizer.json")),
  );
  const vocab = json.model.vocab as Record<string, number>;
  const tokens: string[] = [];
  for (const [token, id] of Object.entries(vocab)) tokens[id] = token;
  const special = new Set((json.added_tokens as { id: number }[]).map((t) => t.id));
  const metadata = new Map<string, GgufValue>([
    ["tokenizer.ggml.model", "gpt2"],
    ["tokenizer.ggml.pre", "smollm"],
    ["tokenizer.ggml.tokens", tokens],
    ["tokenizer.ggml.token_type", tokens.map((_, id) => (special.has(id) ? 3 : 1))],
    ["tokenizer.ggml.merges", (json.model.merges as string[][]).map((m) => m.join(" "))],
    ["tokenizer.ggml.bos_token_id", 1],
    ["tokenizer.ggml.eos_token_id", 2],
  ]);
  return { version: 3, metadata, tensors: [], alignment: 32, dataOffset: 0 };
}

Deno.test("tokenizerFilesFromGguf writes a byte-level BPE vocabulary that encodes like the original", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const file of tokenizerFilesFromGguf(await smollm2Gguf(), {
        name: "smollm2.gguf",
        maxPositions: 8192,
      })
    ) {
      await Deno.writeFile(join(dir, file.name), file.bytes);
    }
    const converted = await loadTokenizer(join(dir, "tokenizer.json"));
    const original = await loadTokenizer(join(FIXTURES, "tokenizers/smollm2/tokenizer.json"));
    const cases = (await Deno.readTextFile(
      join(FIXTURES, "tokenizers/llama-cpp-vocab/ggml-vocab-qwen2.gguf.inp"),
    )).split("\n__ggml_vocab_test__\n");
    assert.ok(cases.length > 20);
    for (const text of cases) {
      const ids = original.encode(text, { addBos: false });
      assert.deepEqual(converted.encode(text, { addBos: false }), ids, JSON.stringify(text));
      assert.equal(converted.decode(ids), original.decode(ids));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizerFilesFromGguf refuses a tokenizer model it cannot write", () => {
  const gguf: GgufFile = {
    version: 3,
    metadata: new Map([["tokenizer.ggml.model", "bert"]]),
    tensors: [],
    alignment: 32,
    dataOffset: 0,
  };
  assert.throws(
    () => tokenizerFilesFromGguf(gguf, { name: "m.gguf", maxPositions: 512 }),
    TypeError,
  );
});
