import assert from "node:assert/strict";
import type { GgufValue } from "../formats/gguf.ts";
import { GGUF_TOKEN_TYPE } from "./gguf_tokenizer.ts";
import { bpeToHfTokenizer, ggufToHfTokenizer } from "./gguf_to_hf.ts";
import { HfTokenizer } from "./hf_tokenizer.ts";
import { splitVocabInputs } from "./vocab_cases.ts";

const SMOLLM2 = new URL("../../../shared/fixtures/tokenizers/smollm2/", import.meta.url);
const VOCAB = new URL("../../../shared/fixtures/tokenizers/llama-cpp-vocab/", import.meta.url);

/** The `tokenizer.ggml.*` metadata llama.cpp's converter writes for SmolLM2. */
async function smollm2Metadata(): Promise<{ meta: Map<string, GgufValue>; original: HfTokenizer }> {
  const json = JSON.parse(await Deno.readTextFile(new URL("tokenizer.json", SMOLLM2)));
  const config = JSON.parse(await Deno.readTextFile(new URL("tokenizer_config.json", SMOLLM2)));
  const tokens: string[] = [];
  const types: number[] = [];
  for (const [piece, id] of Object.entries(json.model.vocab as Record<string, number>)) {
    tokens[id] = piece;
    types[id] = GGUF_TOKEN_TYPE.NORMAL;
  }
  for (const added of json.added_tokens as { id: number; content: string; special: boolean }[]) {
    tokens[added.id] = added.content;
    types[added.id] = added.special ? GGUF_TOKEN_TYPE.CONTROL : GGUF_TOKEN_TYPE.USER_DEFINED;
  }
  const meta = new Map<string, GgufValue>([
    ["tokenizer.ggml.model", "gpt2"],
    ["tokenizer.ggml.pre", "smollm"],
    ["tokenizer.ggml.tokens", tokens],
    ["tokenizer.ggml.token_type", types],
    ["tokenizer.ggml.merges", (json.model.merges as string[][]).map((m) => m.join(" "))],
    ["tokenizer.ggml.bos_token_id", 1],
    ["tokenizer.ggml.eos_token_id", 2],
    ["tokenizer.ggml.add_bos_token", false],
    ["tokenizer.chat_template", "{{ messages[0]['content'] }}"],
  ]);
  return { meta, original: new HfTokenizer(json, config) };
}

Deno.test("bpeToHfTokenizer rebuilds SmolLM2's tokenizer from GGUF-style metadata", async () => {
  const { meta, original } = await smollm2Metadata();
  const files = ggufToHfTokenizer({ metadata: meta }, "smollm2.gguf");
  const rebuilt = new HfTokenizer(
    JSON.parse(JSON.stringify(files.tokenizerJson)),
    files.tokenizerConfig,
  );
  assert.equal(files.tokenizerConfig["chat_template"], "{{ messages[0]['content'] }}");
  const texts = [
    "Once upon a time, there was a little girl named Lily.",
    "Numbers 1234567 and 3.14159, code `x += 1;`\n\n\tindented\n",
    " héllo wörld 🦙 — “quotes” don't WE'LL",
    "<|im_start|>user\nHi!<|im_end|>\n",
    "",
    ...splitVocabInputs(await Deno.readTextFile(new URL("ggml-vocab-qwen2.gguf.inp", VOCAB))),
  ];
  for (const text of texts) {
    const ids = rebuilt.encode(text);
    assert.deepEqual(ids, original.encode(text), JSON.stringify(text));
    assert.equal(rebuilt.decode(ids), original.decode(ids));
  }
  assert.equal(rebuilt.bos, 1);
  assert.deepEqual(rebuilt.eos, [2, 0]); // <|im_end|>, then <|endoftext|>
});

/** GPT-2's printable stand-in for each byte. */
function byteAlphabet(): string[] {
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    return String.fromCodePoint(printable ? b : 256 + extra++);
  });
}

/** The tokens' texts of `text` under a tokenizer of `meta` with the pre-tokenizer `pre`. */
function splitPieces(meta: Map<string, GgufValue>, pre: string, text: string): string[] {
  meta.set("tokenizer.ggml.pre", pre);
  const files = bpeToHfTokenizer({ metadata: meta });
  const tok = new HfTokenizer(files.tokenizerJson, files.tokenizerConfig);
  const ids = tok.encode(text);
  assert.equal(tok.decode(ids), text, pre);
  return ids.map((id) => new TextDecoder().decode(tok.tokenBytes(id)));
}

Deno.test("bpeToHfTokenizer splits digits as Llama 3 (by three) and Qwen2 (one by one) do", () => {
  const tokens = [...byteAlphabet(), "12", "123", "45"];
  const meta = new Map<string, GgufValue>([
    ["tokenizer.ggml.model", "gpt2"],
    ["tokenizer.ggml.tokens", tokens],
    ["tokenizer.ggml.merges", ["1 2", "12 3", "4 5"]],
  ]);
  const pieces = (pre: string, text: string) => splitPieces(meta, pre, text);
  assert.deepEqual(pieces("llama-bpe", "12345"), ["123", "45"]);
  assert.deepEqual(pieces("qwen2", "12345"), ["1", "2", "3", "4", "5"]);
  assert.deepEqual(pieces("gpt-2", "12345"), ["123", "45"]);
  assert.deepEqual(pieces("falcon3", "12345"), ["123", "45"]);
  assert.deepEqual(pieces("deepseek-r1-qwen", "12345"), ["1", "2", "3", "4", "5"]);
  assert.deepEqual(pieces("starcoder", "12345"), ["1", "2", "3", "4", "5"]);
  const text = "Hello WORLD's tokens!!\n\n  indented\tline ünïcödé 🦙";
  for (const pre of ["llama-bpe", "qwen2", "gpt-2", "smollm"]) pieces(pre, text);
});

Deno.test("bpeToHfTokenizer names an unsupported pre-tokenizer and a bad merge", async () => {
  const { meta } = await smollm2Metadata();
  meta.set("tokenizer.ggml.pre", "tekken");
  assert.throws(() => bpeToHfTokenizer({ metadata: meta }, "m.gguf"), {
    name: "TypeError",
    message: /m\.gguf: pre-tokenizer 'tekken' is not supported \(supported: llama-bpe, qwen2/,
  });
  meta.set("tokenizer.ggml.pre", "qwen2");
  meta.set("tokenizer.ggml.merges", ["ab"]);
  assert.throws(() => bpeToHfTokenizer({ metadata: meta }, "m.gguf"), {
    name: "SyntaxError",
    message: "GGUF file m.gguf: merge 0 'ab' has no separating space",
  });
  assert.throws(
    () => ggufToHfTokenizer({ metadata: new Map([["tokenizer.ggml.model", "t5"]]) }, "t.gguf"),
    { name: "TypeError", message: /tokenizer model 't5' is not supported/ },
  );
});
