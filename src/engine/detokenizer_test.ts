import assert from "node:assert/strict";
import { ByteDetokenizer, IncrementalDetokenizer } from "./detokenizer.ts";
import { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import { llama2cToHfTokenizer } from "../tokenizer/llama2c_to_hf.ts";
import { parseLlama2cTokenizer } from "../tokenizer/llama2c_tokenizer.ts";
import { loadTokenizer } from "../tokenizer/load_tokenizer.ts";

/** One token per byte, decoded the way byte-fallback vocabularies decode. */
const bytes = {
  decode(ids: readonly number[]): string {
    return new TextDecoder().decode(Uint8Array.from(ids));
  },
};

/** Word tokens with a leading-space marker stripped at the start, like SentencePiece. */
const words = ["<s>", "▁Hello", "▁world", "!", "▁é"];
const pieces = {
  decode(ids: readonly number[]): string {
    const text = ids.filter((id) => id !== 0).map((id) => words[id]!).join("").replaceAll("▁", " ");
    return text.startsWith(" ") ? text.slice(1) : text;
  },
};

Deno.test("IncrementalDetokenizer never splits a multi-byte character", () => {
  const text = "a€b😀c";
  const d = new IncrementalDetokenizer(bytes);
  const deltas: string[] = [];
  for (const byte of new TextEncoder().encode(text)) deltas.push(d.push(byte));
  deltas.push(d.flush());
  assert.equal(deltas.join(""), text);
  for (const delta of deltas) assert.ok(!delta.includes("\uFFFD"), JSON.stringify(deltas));
  assert.deepEqual(deltas.filter((s) => s !== ""), ["a", "€", "b", "😀", "c"]);
});

Deno.test("IncrementalDetokenizer deltas join to the full decode", () => {
  const ids = [0, 1, 2, 3, 4, 1];
  const d = new IncrementalDetokenizer(pieces);
  let out = "";
  for (const id of ids) out += d.push(id);
  out += d.flush();
  assert.equal(out, pieces.decode(ids));
  assert.equal(out, "Hello world! é Hello");
});

Deno.test("IncrementalDetokenizer flush gives an unfinished character as U+FFFD", () => {
  const d = new IncrementalDetokenizer(bytes);
  assert.equal(d.push(0x41), "A");
  assert.equal(d.push(0xe2), "");
  assert.equal(d.flush(), "\uFFFD");
  assert.deepEqual(d.ids, [0x41, 0xe2]);
});

Deno.test("IncrementalDetokenizer keeps emoji and CJK whole with real byte-level and byte-fallback vocabularies", async () => {
  const fixtures = new URL("../../../shared/fixtures/", import.meta.url);
  const text = "Héllo 😀 世界 — naïve 🧑‍🚀!";
  for (
    const path of [
      new URL("tokenizers/smollm2/tokenizer.json", fixtures).pathname,
      new URL("stories260K/tok512.bin", fixtures).pathname,
    ]
  ) {
    const tokenizer = await loadTokenizer(path);
    const ids = tokenizer.encode(text, { addBos: false });
    const d = new IncrementalDetokenizer(tokenizer);
    const deltas = ids.map((id) => d.push(id));
    deltas.push(d.flush());
    assert.equal(deltas.join(""), tokenizer.decode(ids), path);
    for (const delta of deltas) assert.ok(!delta.includes("\uFFFD"), `${path}: ${deltas}`);
    assert.ok(ids.length > deltas.filter((s) => s !== "").length, `${path} splits characters`);
  }
});

Deno.test("IncrementalDetokenizer keeps the first space of a completion after the prompt (SentencePiece Strip)", async () => {
  const fixtures = new URL("../../../shared/fixtures/", import.meta.url);
  const stories = llama2cToHfTokenizer(
    parseLlama2cTokenizer(await Deno.readFile(new URL("stories260K/tok512.bin", fixtures))),
  );
  const tokenizers = {
    "stories260K tokenizer.json": new HfTokenizer(stories.tokenizerJson, stories.tokenizerConfig),
    "TinyLlama tokenizer.json": await loadTokenizer(
      new URL("tokenizers/tinyllama/tokenizer.json", fixtures).pathname,
    ),
  };
  for (const [name, tokenizer] of Object.entries(tokenizers)) {
    const prompt = tokenizer.encode("The dog");
    const full = tokenizer.encode("The dog was a big, red dog");
    assert.deepEqual(full.slice(0, prompt.length), prompt, name);
    const completion = full.slice(prompt.length);
    // Decoded on its own, the completion loses its first space: this is what the prompt fixes.
    assert.equal(tokenizer.decode(completion), "was a big, red dog", name);
    const d = new IncrementalDetokenizer(tokenizer, prompt);
    const text = completion.map((id) => d.push(id)).join("") + d.flush();
    assert.equal(text, " was a big, red dog", name);
    assert.equal(tokenizer.decode(prompt) + text, tokenizer.decode(full), name);
    assert.deepEqual(d.ids, completion, name);
  }
});

Deno.test("IncrementalDetokenizer looks past special tokens at the end of the prompt", () => {
  const prompt = [1, 2, 0, 0, 0, 0];
  const d = new IncrementalDetokenizer(pieces, prompt);
  assert.equal(d.push(4), " é");
  assert.equal(d.flush(), "");
});

Deno.test("ByteDetokenizer decodes the tokens' bytes and holds back split characters", () => {
  const bytes = [Uint8Array.of(0x7b, 0x22), Uint8Array.of(0xc3), Uint8Array.of(0xa9, 0x22)];
  const d = new ByteDetokenizer({ tokenBytes: (id) => bytes[id]! });
  assert.deepEqual([d.push(0), d.push(1), d.push(2), d.flush()], ['{"', "", 'é"', ""]);
});
