import assert from "node:assert/strict";
import { HfTokenizer } from "./hf_tokenizer.ts";

const TOKENIZERS = new URL("../../../shared/fixtures/tokenizers/", import.meta.url);

async function json(path: string): Promise<unknown> {
  return JSON.parse(await Deno.readTextFile(new URL(path, TOKENIZERS)));
}

async function smollm2() {
  return new HfTokenizer(
    await json("smollm2/tokenizer.json"),
    await json("smollm2/tokenizer_config.json"),
  );
}

async function tinyllama() {
  return new HfTokenizer(
    await json("tinyllama/tokenizer.json"),
    await json("tinyllama/tokenizer_config.json"),
    await json("tinyllama/generation_config.json"),
  );
}

Deno.test("HfTokenizer loads SmolLM2 with its special tokens and no default BOS", async () => {
  const tok = await smollm2();
  assert.equal(tok.vocabSize, 49153); // 49152 + <|PAD_TOKEN|>
  assert.equal(tok.bos, 1);
  // <|im_end|> (the config's eos_token), then <|endoftext|>, which ends a text as well.
  assert.deepEqual(tok.eos, [2, 0]);
  assert.equal(tok.addsBos, false);
  const ids = tok.encode("Hello world, 123 🦙");
  assert.equal(ids[0] === 1, false);
  assert.equal(tok.decode(ids), "Hello world, 123 🦙");
  assert.deepEqual(tok.encode("Hi", { addBos: true })[0], 1);
  assert.equal(tok.decode([1, ...tok.encode("Hi"), 2]), "Hi");
  assert.equal(tok.decode([]), "");
});

Deno.test("HfTokenizer.tokenBytes undoes SmolLM2's byte-level alphabet", async () => {
  const tok = await smollm2();
  const ids = tok.encode(" héllo 🦙\n");
  const bytes = ids.flatMap((id) => [...tok.tokenBytes(id)]);
  assert.equal(new TextDecoder().decode(Uint8Array.from(bytes)), " héllo 🦙\n");
  assert.deepEqual(tok.tokenBytes(2), new Uint8Array(0));
});

Deno.test("HfTokenizer loads TinyLlama despite its damaged entry 31353", async () => {
  const tok = await tinyllama();
  assert.equal(tok.vocabSize, 32000);
  assert.equal(tok.bos, 1);
  assert.deepEqual(tok.eos, [2]);
  assert.equal(tok.addsBos, true);
  assert.deepEqual(tok.encode("Hello world"), [1, 15043, 3186]);
  assert.deepEqual(tok.encode("Hello world", { addBos: false }), [15043, 3186]);
  assert.equal(tok.decode([1, 15043, 3186, 2]), "Hello world");
  assert.deepEqual(tok.tokenBytes(31353), new Uint8Array(0));
});

Deno.test("HfTokenizer.tokenBytes maps TinyLlama's ▁ and byte-fallback pieces", async () => {
  const tok = await tinyllama();
  const ids = tok.encode("a 🦙\nb", { addBos: false });
  const bytes = ids.flatMap((id) => [...tok.tokenBytes(id)]);
  assert.equal(new TextDecoder().decode(Uint8Array.from(bytes)), " a 🦙\nb");
  assert.deepEqual(tok.tokenBytes(13), Uint8Array.of(10));
});

Deno.test("HfTokenizer rejects something that is not a tokenizer.json", () => {
  assert.throws(() => new HfTokenizer({ version: "1.0" }), {
    name: "TypeError",
    message: /tokenizer\.json object/,
  });
});

Deno.test("HfTokenizer splits SmolLM2's Digits at every numeric character, as the Rust library does", async () => {
  const tok = await smollm2();
  const pieces = tok.encode("ied 4 ½ months").map((id) =>
    new TextDecoder().decode(tok.tokenBytes(id))
  );
  assert.deepEqual(pieces, ["ied", " ", "4", " ", "½", " months"]);
});

Deno.test("HfTokenizer ends at the tokens a fill-in-the-middle model writes after the middle", async () => {
  // SmolLM2's vocabulary with three issue markers named as Qwen2.5-Coder's end tokens.
  const renamed = (await Deno.readTextFile(new URL("smollm2/tokenizer.json", TOKENIZERS)))
    .replaceAll('"<issue_start>"', '"<|fim_pad|>"')
    .replaceAll('"<issue_comment>"', '"<|file_sep|>"')
    .replaceAll('"<issue_closed>"', '"<|repo_name|>"');
  const tok = new HfTokenizer(JSON.parse(renamed), await json("smollm2/tokenizer_config.json"));
  assert.deepEqual(tok.eos, [2, 0, 8, 9, 10]);
});
