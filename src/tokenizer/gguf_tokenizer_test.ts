import assert from "node:assert/strict";
import { readGguf } from "../formats/gguf.ts";
import { openFileSource } from "../storage/file_source.ts";
import { ggufTokenizer } from "./gguf_tokenizer.ts";
import { readVocabCases } from "./vocab_cases.ts";

const VOCAB = new URL("../../../shared/fixtures/tokenizers/llama-cpp-vocab/", import.meta.url);

async function spm() {
  const source = await openFileSource(new URL("ggml-vocab-llama-spm.gguf", VOCAB).pathname);
  try {
    return ggufTokenizer(await readGguf(source), source.name);
  } finally {
    await source.close();
  }
}

Deno.test("ggufTokenizer encodes every llama-spm test vector as llama.cpp does", async () => {
  const tok = await spm();
  const cases = await readVocabCases(
    new URL("ggml-vocab-llama-spm.gguf.inp", VOCAB).pathname,
    new URL("ggml-vocab-llama-spm.gguf.out", VOCAB).pathname,
  );
  assert.equal(cases.length, 46);
  const failures = cases.filter((c) =>
    JSON.stringify(tok.encode(c.text, { addBos: false })) !== JSON.stringify(c.ids)
  ).map((c) => `${JSON.stringify(c.text)}: ${tok.encode(c.text, { addBos: false })} != ${c.ids}`);
  assert.deepEqual(failures, []);
});

Deno.test("ggufTokenizer prepends BOS by default and decodes back", async () => {
  const tok = await spm();
  assert.equal(tok.vocabSize, 32000);
  assert.equal(tok.bos, 1);
  assert.deepEqual(tok.eos, [2]);
  const ids = tok.encode(" Hello World!");
  assert.deepEqual(ids, [1, 29871, 15043, 2787, 29991]);
  assert.equal(tok.decode(ids), " Hello World!");
  assert.equal(tok.decode(tok.encode("нещо на Български 🦙")), "нещо на Български 🦙");
  assert.deepEqual(tok.encode(""), [1]);
  assert.deepEqual(tok.encode("<s>a", { addBos: false, parseSpecial: true }), [1, 263]);
});

Deno.test("ggufTokenizer refuses a non-SentencePiece vocabulary", () => {
  const metadata = new Map([["tokenizer.ggml.model", "gpt2"]]);
  assert.throws(() => ggufTokenizer({ metadata }, "x.gguf"), {
    name: "TypeError",
    message: /x\.gguf: tokenizer model 'gpt2' is not supported/,
  });
});

Deno.test("ggufTokenizer ends at <end_of_turn> (Gemma's), named in the metadata or not", () => {
  const tokens = ["<unk>", "<s>", "</s>", "<end_of_turn>", "▁a"];
  const metadata = new Map<string, unknown>([
    ["tokenizer.ggml.model", "llama"],
    ["tokenizer.ggml.tokens", tokens],
    ["tokenizer.ggml.scores", [0, 0, 0, 0, -1]],
    ["tokenizer.ggml.token_type", [2, 3, 3, 3, 1]],
    ["tokenizer.ggml.bos_token_id", 1],
    ["tokenizer.ggml.eos_token_id", 2],
  ]);
  const tok = ggufTokenizer({ metadata } as Parameters<typeof ggufTokenizer>[0], "g.gguf");
  assert.deepEqual(tok.eos, [2, 3]);
  // A normal token of that text is no end.
  metadata.set("tokenizer.ggml.token_type", [2, 3, 3, 1, 1]);
  const plain = ggufTokenizer({ metadata } as Parameters<typeof ggufTokenizer>[0], "g.gguf");
  assert.deepEqual(plain.eos, [2]);
});
