/**
 * llama.cpp's tokenizer test vectors (`models/ggml-vocab-*.gguf` with their `.inp` texts and
 * `.out` ids), read from the cache `.ci/llama_cpp_vocab.sh` fills from the git bundle the npm
 * package node-llama-cpp ships. Every vocabulary whose family Rill claims must encode every
 * text to the same ids, through both ways a GGUF vocabulary is used: `loadTokenizer` on the
 * file (`--tokenizer model.gguf`) and the Hugging Face files the converter writes into the
 * archive. Every other family must be refused by name.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readGguf } from "../src/formats/gguf.ts";
import { ggufToHfTokenizer, SUPPORTED_PRE_TOKENIZERS } from "../src/tokenizer/gguf_to_hf.ts";
import { HfTokenizer } from "../src/tokenizer/hf_tokenizer.ts";
import { loadTokenizer } from "../src/tokenizer/load_tokenizer.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { readVocabCases } from "../src/tokenizer/vocab_cases.ts";
import { openFileSource } from "../src/storage/file_source.ts";

const VERSION = "3.22.1";

function vocabDir(): string {
  const env = (name: string) => Deno.env.get(name) || undefined;
  const cache = env("RILL_TEST_CACHE") ??
    join(env("XDG_CACHE_HOME") ?? join(env("HOME") ?? ".", ".cache"), "rill-tests");
  return join(cache, `llama-cpp-vocab-${VERSION}`);
}

const DIR = vocabDir();

/** The vocabularies Rill claims, by file, with the `tokenizer.ggml.model` / `.pre` they hold. */
const CLAIMED: Record<string, { model: string; pre: string }> = {
  "llama-spm": { model: "llama", pre: "default" },
  "phi-3": { model: "llama", pre: "default" },
  "gpt-2": { model: "gpt2", pre: "gpt-2" },
  "llama-bpe": { model: "gpt2", pre: "llama-bpe" },
  "qwen2": { model: "gpt2", pre: "qwen2" },
  "starcoder": { model: "gpt2", pre: "starcoder" },
  "refact": { model: "gpt2", pre: "refact" },
};

/** Pre-tokenizer names llama.cpp runs exactly as another, with the file whose vectors test them. */
const SAME_AS: Record<string, string> = {
  "llama3": "llama-bpe",
  "llama-v3": "llama-bpe",
  "falcon3": "llama-bpe",
  "deepseek-r1-qwen": "qwen2",
  "smollm": "starcoder",
  "gpt2": "gpt-2",
};

/** The other vocabularies with test vectors, each refused when loaded. */
const REFUSED: Record<string, RegExp> = {
  "bert-bge": /tokenizer model 'bert' is not supported/,
  "command-r": /pre-tokenizer 'command-r' is not supported/,
  "deepseek-coder": /pre-tokenizer 'deepseek-coder' is not supported/,
  "deepseek-llm": /pre-tokenizer 'deepseek-llm' is not supported/,
  "falcon": /pre-tokenizer 'falcon' is not supported/,
  "gemma-4": /tokenizer model 'gemma4' is not supported/,
  "mpt": /pre-tokenizer 'mpt' is not supported/,
  "qwen35": /pre-tokenizer 'qwen35' is not supported/,
};

function path(family: string, suffix = ""): string {
  return join(DIR, `ggml-vocab-${family}.gguf${suffix}`);
}

async function metadata(family: string) {
  const source = await openFileSource(path(family));
  try {
    return (await readGguf(source)).metadata;
  } finally {
    await source.close();
  }
}

/** The cases whose ids differ, as `text: found != expected` lines. */
async function failures(family: string, tokenizer: Tokenizer): Promise<string[]> {
  const cases = await readVocabCases(path(family, ".inp"), path(family, ".out"));
  assert.ok(cases.length >= 40, `${family}: only ${cases.length} cases`);
  return cases.flatMap((c) => {
    const ids = tokenizer.encode(c.text, { addBos: false });
    return ids.join(" ") === c.ids.join(" ")
      ? []
      : [`${JSON.stringify(c.text)}: ${ids.join(" ")} != ${c.ids.join(" ")}`];
  });
}

Deno.test("llama.cpp's vocab test files are in the test cache", async () => {
  let names: string[];
  try {
    names = [...Deno.readDirSync(DIR)].map((e) => e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    assert.fail(
      `llama.cpp's vocab test files are not in ${DIR}: run 'bash .ci/llama_cpp_vocab.sh' ` +
        `(it fetches the npm package node-llama-cpp@${VERSION}; RILL_TEST_CACHE moves the cache)`,
    );
  }
  const families = names.filter((n) => n.endsWith(".gguf.inp"))
    .map((n) => n.slice("ggml-vocab-".length, -".gguf.inp".length)).sort();
  assert.deepEqual(families, [...Object.keys(CLAIMED), ...Object.keys(REFUSED)].sort());
  for (const [family, want] of Object.entries(CLAIMED)) {
    const meta = await metadata(family);
    assert.equal(meta.get("tokenizer.ggml.model"), want.model, family);
    assert.equal(meta.get("tokenizer.ggml.pre") ?? "default", want.pre, family);
  }
});

for (const family of Object.keys(CLAIMED)) {
  Deno.test(`llama.cpp ${family} vectors: the GGUF as a tokenizer matches every one`, async () => {
    assert.deepEqual(await failures(family, await loadTokenizer(path(family))), []);
  });
  Deno.test(`llama.cpp ${family} vectors: the converter's tokenizer.json matches every one`, async () => {
    const files = ggufToHfTokenizer({ metadata: await metadata(family) }, path(family));
    const tokenizer = new HfTokenizer(files.tokenizerJson, files.tokenizerConfig);
    assert.deepEqual(await failures(family, tokenizer), []);
  });
}

Deno.test("every supported pre-tokenizer name is tested by a family's vectors", () => {
  const tested = new Set([
    ...Object.values(CLAIMED).map((c) => c.pre),
    ...Object.keys(SAME_AS),
  ]);
  assert.deepEqual(SUPPORTED_PRE_TOKENIZERS.filter((name) => !tested.has(name)), []);
});

for (const [alias, family] of Object.entries(SAME_AS)) {
  Deno.test(`llama.cpp ${family} vectors: pre-tokenizer '${alias}' matches every one`, async () => {
    const meta = new Map(await metadata(family)).set("tokenizer.ggml.pre", alias);
    const files = ggufToHfTokenizer({ metadata: meta }, path(family));
    const tokenizer = new HfTokenizer(files.tokenizerJson, files.tokenizerConfig);
    assert.deepEqual(await failures(family, tokenizer), []);
  });
}

for (const [family, message] of Object.entries(REFUSED)) {
  Deno.test(`llama.cpp ${family} vocabulary is refused by name`, async () => {
    await assert.rejects(loadTokenizer(path(family)), { name: "TypeError", message });
  });
}
