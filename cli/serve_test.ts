import assert from "node:assert/strict";
import { readServeConfig } from "./serve.ts";

Deno.test("readServeConfig takes flags over environment over defaults", () => {
  const env: Record<string, string> = {
    MODEL: "env.nnef.tar",
    PORT: "9000",
    RILL_API_KEYS: " a, b ,,",
    RILL_CORS_ORIGINS: "*",
    RILL_MAX_QUEUE: "3",
    RILL_MODEL_ALIASES: "gpt-4o-mini, local",
  };
  const config = readServeConfig(["--model", "flag.nnef.tar", "--max-tokens=77"], (n) => env[n]);
  assert.equal(config.model, "flag.nnef.tar");
  assert.equal(config.port, 9000);
  assert.equal(config.host, "0.0.0.0");
  assert.deepEqual(config.serving.apiKeys, ["a", "b"]);
  assert.deepEqual(config.serving.corsOrigins, ["*"]);
  assert.equal(config.serving.maxQueue, 3);
  assert.deepEqual(config.serving.modelAliases, ["gpt-4o-mini", "local"]);
  assert.equal(config.serving.maxTokensCap, 77);
  assert.equal(config.tokenizer, undefined);
  assert.equal(config.threads, undefined);
  assert.equal(config.prefillChunk, undefined);
  assert.equal(readServeConfig(["--threads", "0"], () => undefined).threads, 0);
  assert.equal(
    readServeConfig([], (n) => (n === "RILL_PREFILL_CHUNK" ? "16" : undefined)).prefillChunk,
    16,
  );
  const defaults = readServeConfig([], () => undefined);
  assert.equal(defaults.port, 8000);
  assert.equal(defaults.model, undefined);
  assert.deepEqual(defaults.serving.apiKeys, []);
});

Deno.test("readServeConfig rejects numbers out of range, naming the flag", () => {
  assert.throws(() => readServeConfig(["--port", "-1"], () => undefined), /--port \(PORT\)/);
  assert.throws(
    () => readServeConfig([], (n) => (n === "RILL_MAX_TOKENS" ? "0" : undefined)),
    /--max-tokens/,
  );
  assert.throws(() => readServeConfig(["--max-queue", "x"], () => undefined), RangeError);
});

Deno.test("readServeConfig reads the batch size and the KV budget with byte units", () => {
  const env: Record<string, string> = { RILL_MAX_BATCH: "4", RILL_KV_BUDGET: "512MiB" };
  const config = readServeConfig([], (n) => env[n]);
  assert.equal(config.serving.maxBatch, 4);
  assert.equal(config.kvBudgetBytes, 512 * 2 ** 20);
  assert.equal(readServeConfig(["--kv-budget", "2G"], () => undefined).kvBudgetBytes, 2 * 2 ** 30);
  assert.equal(readServeConfig([], () => undefined).kvBudgetBytes, undefined);
  assert.throws(
    () => readServeConfig(["--kv-budget", "lots"], () => undefined),
    /--kv-budget \(RILL_KV_BUDGET\) must be a size in bytes/,
  );
  assert.throws(() => readServeConfig(["--max-batch", "0"], () => undefined), /--max-batch/);
});

Deno.test("readServeConfig reads --spm-infill and RILL_SPM_INFILL, refusing other values", () => {
  const from = (args: string[], value?: string) =>
    readServeConfig(args, (n) => (n === "RILL_SPM_INFILL" ? value : undefined)).serving.spmInfill;
  assert.equal(from([]), false);
  assert.equal(from(["--spm-infill"]), true);
  assert.equal(from([], "1"), true);
  assert.equal(from([], "true"), true);
  assert.equal(from([], "0"), false);
  assert.throws(() => from([], "maybe"), /RILL_SPM_INFILL must be 1 or 0/);
  assert.throws(() => from(["--spm-infill=yes"]), /takes no value/);
});

Deno.test("readServeConfig reads the memory limit and the shutdown grace period", () => {
  const defaults = readServeConfig([], () => undefined);
  assert.equal(defaults.memoryLimit, undefined);
  assert.equal(defaults.shutdownGraceMs, 3000);
  const env: Record<string, string> = { RILL_MEMORY_LIMIT: "768M", RILL_SHUTDOWN_GRACE_MS: "0" };
  const fromEnv = readServeConfig([], (n) => env[n]);
  assert.deepEqual(fromEnv.memoryLimit, { bytes: 768 * 2 ** 20, from: "RILL_MEMORY_LIMIT" });
  assert.equal(fromEnv.shutdownGraceMs, 0);
  const fromFlag = readServeConfig(["--memory-limit", "4G"], (n) => env[n]);
  assert.deepEqual(fromFlag.memoryLimit, { bytes: 4 * 2 ** 30, from: "--memory-limit" });
  assert.throws(
    () => readServeConfig([], (n) => (n === "RILL_MEMORY_LIMIT" ? "lots" : undefined)),
    /^RangeError: --memory-limit \(RILL_MEMORY_LIMIT\) must be a size in bytes/,
  );
  assert.throws(
    () => readServeConfig(["--shutdown-grace-ms", "-5"], () => undefined),
    /--shutdown-grace-ms \(RILL_SHUTDOWN_GRACE_MS\)/,
  );
});

Deno.test("readServeConfig refuses an unknown flag or a stray argument instead of ignoring it", () => {
  assert.throws(
    () => readServeConfig(["--modle", "x.nnef.tar"], () => undefined),
    (e: unknown) =>
      e instanceof TypeError &&
      /Unknown option '--modle' \(did you mean '--model'\?\)/.test(e.message) &&
      e.message.includes("--cache-dir"),
  );
  assert.throws(() => readServeConfig(["x.nnef.tar"], () => undefined), /Unexpected argument/);
});

Deno.test("readServeConfig reads the load and member timeouts in seconds", () => {
  const env: Record<string, string> = { RILL_MEMBER_TIMEOUT: "10" };
  const config = readServeConfig(["--load-timeout", "2.5"], (n) => env[n]);
  assert.equal(config.loadTimeoutMs, 2500);
  assert.equal(config.memberTimeoutMs, 10_000);
  assert.equal(readServeConfig([], () => undefined).loadTimeoutMs, undefined);
  assert.throws(
    () => readServeConfig(["--member-timeout", "-1"], () => undefined),
    /--member-timeout \(RILL_MEMBER_TIMEOUT\) must be a number of seconds >= 0, got '-1'/,
  );
});
