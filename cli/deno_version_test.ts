import assert from "node:assert/strict";
import { atLeast, denoVersionProblem, MIN_DENO, MIN_DENO_DEV } from "./deno_version.ts";

Deno.test("atLeast compares major, minor and patch numbers", () => {
  assert.ok(atLeast("2.9.6", "2.6.8"));
  assert.ok(atLeast("2.6.8", "2.6.8"));
  assert.ok(atLeast("2.10.0", "2.6.8"));
  assert.ok(atLeast("3.0.0+abc", "2.6.8"));
  assert.ok(!atLeast("2.6.7", "2.6.8"));
  assert.ok(!atLeast("2.2.15", "2.3.0"));
  assert.ok(!atLeast("1.46.3", "2.3.0"));
});

Deno.test("denoVersionProblem says which Deno is needed and how to get it", () => {
  assert.equal(denoVersionProblem(Deno.version.deno, MIN_DENO_DEV, "test"), null);
  assert.equal(
    denoVersionProblem("2.2.15", MIN_DENO, "run"),
    "Rill needs Deno 2.3.0 or newer to run; this is Deno 2.2.15. " +
      "Upgrade with 'deno upgrade' or 'npm install -g deno@2'",
  );
});
