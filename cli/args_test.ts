import assert from "node:assert/strict";
import { parseCliArgs } from "./args.ts";

Deno.test("parseCliArgs separates flags, values and positional arguments", () => {
  const parsed = parseCliArgs(["model.tgz", "--json", "--max-tokens", "8", "--seed=3"], ["json"]);
  assert.deepEqual(parsed.positional, ["model.tgz"]);
  assert.equal(parsed.flags.get("json"), true);
  assert.equal(parsed.flags.get("max-tokens"), "8");
  assert.equal(parsed.flags.get("seed"), "3");
});
