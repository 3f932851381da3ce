import assert from "node:assert/strict";
import { join } from "node:path";
import { writeTinySmolLM2 } from "../tests/_hub.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const FIXTURES = new URL("../../shared/fixtures/stories260K/", import.meta.url).pathname;

Deno.test("generateCommand streams only the greedy completion and reports speeds", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "cli/main.ts",
      "generate",
      "--model",
      `${FIXTURES}nnef/stories260K_f32.nnef.tgz`,
      "--tokenizer",
      `${FIXTURES}tok512.bin`,
      "--prompt",
      "Once upon a time",
      "--max-tokens",
      "60",
      "--temperature",
      "0",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(stderr);
  assert.equal(code, 0, err);
  const expected = (await Deno.readTextFile(`${FIXTURES}greedy64.txt`)).slice(
    "Once upon a time".length,
  );
  assert.equal(new TextDecoder().decode(stdout), expected);
  assert.match(err, /prefill: 5 tokens in .* tokens\/s\); decode: 59 tokens in .* tokens\/s\)/);
});

async function generate(args: string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/main.ts", "generate", ...args],
    cwd: ROOT,
    env: { MODEL: "", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

Deno.test("generateCommand names a missing flag or file and what to give instead", async () => {
  const noModel = await generate(["--prompt", "x"]);
  assert.equal(noModel.code, 2);
  assert.match(
    noModel.stderr,
    /^rill generate: --model is missing: give an NNEF archive, a GGUF file, a Hugging Face folder or hf:org\/name \(or set MODEL\)/,
  );
  const noPrompt = await generate(["--model", "m.nnef.tar"]);
  assert.equal(noPrompt.code, 2);
  assert.match(noPrompt.stderr, /^rill generate: --prompt is missing: give the text to complete/);
  const absent = await generate(["--model", "/nonexistent.tgz", "--prompt", "x"]);
  assert.equal(absent.code, 1);
  assert.match(absent.stderr, /'\/nonexistent\.tgz' is not a file or folder/);
  const noTokenizer = await generate([
    "--model",
    `${FIXTURES}nnef/stories260K_f32.nnef.tgz`,
    "--prompt",
    "x",
  ]);
  assert.equal(noTokenizer.code, 1);
  assert.match(
    noTokenizer.stderr,
    /stories260K_f32\.nnef\.tgz holds no tokenizer\.json; give one with --tokenizer/,
  );
});

Deno.test("generateCommand converts a Hugging Face folder once and reads the tokenizer it carries", async () => {
  const root = await Deno.makeTempDir({ prefix: "rill_generate_" });
  try {
    const folder = join(root, "SmolLM2-tiny");
    await writeTinySmolLM2(folder);
    const args = [
      "--model",
      folder,
      "--prompt",
      "Hello",
      "--max-tokens",
      "6",
      "--temperature",
      "0",
    ];
    const env = { RILL_CACHE_DIR: join(root, "cache") };
    const first = await generate(args, env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /converting the Hugging Face folder .*SmolLM2-tiny to Q4_0/);
    assert.match(first.stderr, /decode: 5 tokens/);
    assert.ok(first.stdout.trim().length > 0, first.stdout);
    const second = await generate(args, env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /using .* converted earlier from .*SmolLM2-tiny/);
    assert.equal(second.stdout, first.stdout);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
