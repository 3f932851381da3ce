import assert from "node:assert/strict";

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

Deno.test("generateCommand explains a missing flag or model", async () => {
  const { generateCommand } = await import("./generate.ts");
  assert.equal(await generateCommand(["--prompt", "x"]), 2);
  assert.equal(
    await generateCommand(["--model", "/nonexistent.tgz", "--tokenizer", "x", "--prompt", "x"]),
    1,
  );
});
