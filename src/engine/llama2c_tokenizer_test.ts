import assert from "node:assert/strict";
import { parseLlama2cTokenizer } from "./llama2c_tokenizer.ts";

const FIXTURES = new URL("../../../shared/fixtures/stories260K/", import.meta.url);

async function load() {
  return parseLlama2cTokenizer(await Deno.readFile(new URL("tok512.bin", FIXTURES)), "tok512.bin");
}

async function reference(): Promise<{ prompt_tokens: number[]; sequence_after_bos: number[] }> {
  return JSON.parse(
    await Deno.readTextFile(new URL("reference_stories260K_greedy64.json", FIXTURES)),
  );
}

Deno.test("parseLlama2cTokenizer reads tok512.bin", async () => {
  const tok = await load();
  assert.equal(tok.vocabSize, 512);
  assert.equal(tok.maxTokenLength, 7);
  assert.equal(tok.bos, 1);
  assert.deepEqual(tok.tokenBytes(3 + 0x41), Uint8Array.of(0x41));
});

Deno.test("Llama2cTokenizer.encode matches llama2.c on the reference prompt", async () => {
  const tok = await load();
  assert.deepEqual(tok.encode("Once upon a time"), [1, 403, 407, 261, 378]);
  assert.deepEqual((await reference()).prompt_tokens, [1, 403, 407, 261, 378]);
  assert.deepEqual(tok.encode("Once upon a time", { addBos: false }), [403, 407, 261, 378]);
  assert.deepEqual(tok.encode(""), [1]);
});

Deno.test("Llama2cTokenizer.encode falls back to bytes for characters outside the vocabulary", async () => {
  const tok = await load();
  const ids = tok.encode("é🦙", { addBos: false });
  assert.ok(ids.every((id) => id >= 3));
  assert.equal(tok.decode(ids), " é🦙");
  assert.equal(tok.decode([1, ...ids]), "é🦙");
});

Deno.test("Llama2cTokenizer.decode reproduces llama2.c's greedy64 output", async () => {
  const tok = await load();
  const ref = await reference();
  const text = await Deno.readTextFile(new URL("greedy64.txt", FIXTURES));
  assert.equal(tok.decode([1, ...ref.sequence_after_bos]) + "\n", text);
});

Deno.test("Llama2cTokenizer round-trips the greedy256 reference text", async () => {
  const tok = await load();
  const text = (await Deno.readTextFile(new URL("greedy256.txt", FIXTURES))).replace(/\n$/, "");
  const ids = tok.encode(text);
  assert.equal(tok.decode(ids), text);
  const ref = await reference();
  assert.deepEqual(ids.slice(0, 40), [1, ...ref.sequence_after_bos.slice(0, 39)]);
});

Deno.test("parseLlama2cTokenizer rejects a truncated file", async () => {
  const bytes = await Deno.readFile(new URL("tok512.bin", FIXTURES));
  assert.throws(() => parseLlama2cTokenizer(bytes.subarray(0, 1000), "tok512.bin"), {
    name: "RangeError",
    message: /tok512\.bin/,
  });
});
