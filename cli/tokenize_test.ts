import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;
const FIXTURES = new URL("../../shared/fixtures/", import.meta.url).pathname;
const VOCAB = `${FIXTURES}tokenizers/llama-cpp-vocab/`;

async function run(
  args: string[],
  stdin = "",
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cli/main.ts`, "tokenize", ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

Deno.test("tokenizeCommand prints the ids of stdin", async () => {
  const { code, stdout } = await run(
    ["--tokenizer", `${FIXTURES}stories260K/tok512.bin`],
    "Once upon a time",
  );
  assert.equal(code, 0);
  assert.equal(stdout, "1 403 407 261 378\n");
});

Deno.test("tokenizeCommand --cases reproduces llama.cpp's llama-spm .out file", async () => {
  const { code, stdout } = await run([
    "--tokenizer",
    `${VOCAB}ggml-vocab-llama-spm.gguf`,
    "--cases",
    `${VOCAB}ggml-vocab-llama-spm.gguf.inp`,
  ]);
  assert.equal(code, 0);
  assert.equal(stdout, await Deno.readTextFile(`${VOCAB}ggml-vocab-llama-spm.gguf.out`));
});

Deno.test("tokenizeCommand names a missing tokenizer flag and what it takes", async () => {
  const { code, stderr } = await run([]);
  assert.equal(code, 2);
  assert.match(
    stderr,
    /^rill tokenize: --tokenizer is missing: give a tokenizer\.json, a folder holding one, a llama2\.c tokenizer\.bin or a GGUF file/,
  );
});
