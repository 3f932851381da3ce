import assert from "node:assert/strict";
import { binaryString, type Llama2cTokenizer, parseLlama2cTokenizer } from "./llama2c_tokenizer.ts";

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

/** llama2.c run.c's merge loop as written: rescan every pair after each merge. */
function naiveEncode(tok: Llama2cTokenizer, text: string): number[] {
  const lookup = new Map<string, number>();
  const texts = tok.pieces.map((p) => binaryString(p.bytes));
  texts.forEach((s, id) => {
    if (!lookup.has(s)) lookup.set(s, id);
  });
  const tokens = [1];
  const bytes = new TextEncoder().encode(text);
  if (bytes.length > 0) tokens.push(lookup.get(" ")!);
  for (let start = 0; start < bytes.length;) {
    let end = start + 1;
    while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - start < 4) end++;
    const id = lookup.get(binaryString(bytes.subarray(start, end)));
    if (id !== undefined) tokens.push(id);
    else for (let i = start; i < end; i++) tokens.push(bytes[i]! + 3);
    start = end;
  }
  while (true) {
    let best = -1e10;
    let bestId = -1;
    let at = -1;
    for (let i = 0; i + 1 < tokens.length; i++) {
      const id = lookup.get(texts[tokens[i]!]! + texts[tokens[i + 1]!]!);
      if (id !== undefined && tok.pieces[id]!.score > best) {
        best = tok.pieces[id]!.score;
        bestId = id;
        at = i;
      }
    }
    if (at < 0) return tokens;
    tokens.splice(at, 2, bestId);
  }
}

Deno.test("Llama2cTokenizer.encode equals llama2.c's quadratic merge loop on varied texts", async () => {
  const tok = await load();
  const story = await Deno.readTextFile(new URL("greedy256.txt", FIXTURES));
  const alphabet = "ab eé\nthe cat ,.'🦙 sat on a mat";
  let seed = 7;
  const texts = [story, story.toUpperCase(), "", " ", "  two", "aaaaaaaaaaaaaaaa"];
  for (let n = 0; n < 20; n++) {
    let t = "";
    for (let i = 0; i < 40; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      t += alphabet[seed % alphabet.length];
    }
    texts.push(t);
  }
  for (const t of texts) assert.deepEqual(tok.encode(t), naiveEncode(tok, t), JSON.stringify(t));
});
