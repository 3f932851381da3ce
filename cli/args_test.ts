import assert from "node:assert/strict";
import { parseCliArgs } from "./args.ts";

const SPEC = { booleans: ["json", "help"], values: ["model", "max-tokens", "seed"] };

Deno.test("parseCliArgs separates flags, values and positional arguments", () => {
  const parsed = parseCliArgs(["model.tgz", "--json", "--max-tokens", "8", "--seed=3"], SPEC);
  assert.deepEqual(parsed.positional, ["model.tgz"]);
  assert.equal(parsed.flags.get("json"), true);
  assert.equal(parsed.flags.get("max-tokens"), "8");
  assert.equal(parsed.flags.get("seed"), "3");
  assert.deepEqual(parseCliArgs(["--", "--json"], SPEC).positional, ["--json"]);
  assert.equal(parseCliArgs(["--max-tokens", "-1"], SPEC).flags.get("max-tokens"), "-1");
});

Deno.test("parseCliArgs refuses an unknown flag, listing the valid ones and the likely one", () => {
  assert.throws(
    () => parseCliArgs(["--modle", "x"], SPEC),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message ===
        "Unknown option '--modle' (did you mean '--model'?); valid options: --help, --json, " +
          "--max-tokens, --model, --seed",
  );
  assert.throws(() => parseCliArgs(["--verbose"], SPEC), /^TypeError: Unknown option '--verbose';/);
});

Deno.test("parseCliArgs refuses a value flag without its value and a boolean with one", () => {
  assert.throws(() => parseCliArgs(["--model"], SPEC), /Option '--model' needs a value/);
  assert.throws(() => parseCliArgs(["--model", "--json"], SPEC), /'--model' needs a value/);
  assert.throws(() => parseCliArgs(["--json=yes"], SPEC), /'--json' takes no value/);
});
