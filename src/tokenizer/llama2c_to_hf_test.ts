import assert from "node:assert/strict";
import { readGguf } from "../formats/gguf.ts";
import { openFileSource } from "../storage/file_source.ts";
import { spmVocabFromGguf } from "./gguf_tokenizer.ts";
import { HfTokenizer } from "./hf_tokenizer.ts";
import { parseLlama2cTokenizer } from "./llama2c_tokenizer.ts";
import { llama2cToHfTokenizer, spmToHfTokenizer } from "./llama2c_to_hf.ts";
import { readVocabCases } from "./vocab_cases.ts";

const FIXTURES = new URL("../../../shared/fixtures/", import.meta.url);

async function tok512() {
  return parseLlama2cTokenizer(
    await Deno.readFile(new URL("stories260K/tok512.bin", FIXTURES)),
    "tok512.bin",
  );
}

async function converted(): Promise<HfTokenizer> {
  const files = llama2cToHfTokenizer(await tok512());
  // Through JSON text, as the files are written into an archive.
  return new HfTokenizer(
    JSON.parse(JSON.stringify(files.tokenizerJson)),
    JSON.parse(JSON.stringify(files.tokenizerConfig)),
  );
}

Deno.test("llama2cToHfTokenizer encodes the reference prompt as llama2.c does", async () => {
  const hf = await converted();
  assert.equal(hf.vocabSize, 512);
  assert.equal(hf.bos, 1);
  assert.deepEqual(hf.eos, [2]);
  assert.deepEqual(hf.encode("Once upon a time"), [1, 403, 407, 261, 378]);
  assert.deepEqual(hf.encode(""), [1]);
});

Deno.test("llama2cToHfTokenizer round-trips greedy256 with llama2.c's ids", async () => {
  const llama2c = await tok512();
  const hf = await converted();
  const text = (await Deno.readTextFile(new URL("stories260K/greedy256.txt", FIXTURES)))
    .replace(/\n$/, "");
  for (const t of [text, " two  spaces\tand é🦙 bytes\n\nend", "x"]) {
    const ids = hf.encode(t);
    assert.deepEqual(ids, llama2c.encode(t), JSON.stringify(t));
    assert.equal(hf.decode(ids), t);
    assert.equal(llama2c.decode(ids), t);
  }
});

Deno.test("spmToHfTokenizer turns the llama-spm GGUF vocabulary into a tokenizer.json passing llama.cpp's vectors", async () => {
  const dir = new URL("tokenizers/llama-cpp-vocab/", FIXTURES);
  const source = await openFileSource(new URL("ggml-vocab-llama-spm.gguf", dir).pathname);
  let vocab;
  try {
    vocab = spmVocabFromGguf(await readGguf(source));
  } finally {
    await source.close();
  }
  const files = spmToHfTokenizer(vocab);
  const hf = new HfTokenizer(files.tokenizerJson, files.tokenizerConfig);
  const cases = await readVocabCases(
    new URL("ggml-vocab-llama-spm.gguf.inp", dir).pathname,
    new URL("ggml-vocab-llama-spm.gguf.out", dir).pathname,
  );
  const failures = cases.filter((c) =>
    JSON.stringify(hf.encode(c.text, { addBos: false })) !== JSON.stringify(c.ids)
  ).map((c) => `${JSON.stringify(c.text)}: ${hf.encode(c.text, { addBos: false })} != ${c.ids}`);
  assert.deepEqual(failures, []);
});
