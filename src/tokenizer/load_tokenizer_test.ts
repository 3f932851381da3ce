import assert from "node:assert/strict";
import { HfTokenizer } from "./hf_tokenizer.ts";
import { Llama2cTokenizer } from "./llama2c_tokenizer.ts";
import { SpmTokenizer } from "./gguf_tokenizer.ts";
import { loadTokenizer } from "./load_tokenizer.ts";

const FIXTURES = new URL("../../../shared/fixtures/", import.meta.url).pathname;

Deno.test("loadTokenizer recognises a llama2.c tokenizer.bin by content", async () => {
  const tok = await loadTokenizer(`${FIXTURES}stories260K/tok512.bin`);
  assert.ok(tok instanceof Llama2cTokenizer);
  assert.deepEqual(tok.encode("Once upon a time"), [1, 403, 407, 261, 378]);
});

Deno.test("loadTokenizer reads a tokenizer.json file or its folder", async () => {
  const file = await loadTokenizer(`${FIXTURES}tokenizers/tinyllama/tokenizer.json`);
  const folder = await loadTokenizer(`${FIXTURES}tokenizers/tinyllama/`);
  assert.ok(file instanceof HfTokenizer && folder instanceof HfTokenizer);
  assert.deepEqual(file.encode("Hello world"), folder.encode("Hello world"));
  assert.deepEqual(file.encode("Hello world"), [1, 15043, 3186]);
});

Deno.test("loadTokenizer reads the vocabulary of a GGUF model", async () => {
  const tok = await loadTokenizer(`${FIXTURES}gguf/llama-2-tiny-random.gguf`);
  assert.ok(tok instanceof SpmTokenizer);
  assert.deepEqual(tok.encode("Hello world"), [1, 15043, 3186]);
});

Deno.test("loadTokenizer rejects a file of another kind", async () => {
  await assert.rejects(loadTokenizer(`${FIXTURES}stories260K/greedy64.txt`), {
    name: "TypeError",
    message: /greedy64\.txt is neither a tokenizer\.json/,
  });
  await assert.rejects(loadTokenizer(`${FIXTURES}stories260K`), {
    name: "TypeError",
    message: /holds no tokenizer\.json/,
  });
});
