import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { openArchive } from "../src/nnef/archive.ts";
import { inspectModel, type ModelSummary } from "../src/nnef/inspect.ts";
import { fixture } from "./_stories260k.ts";

const ROOT = new URL("../", import.meta.url);
const Q40 = fixture("nnef/stories260K_q40.nnef.tgz");
const F32 = fixture("nnef/stories260K_f32.nnef.tgz");

async function inspectFile(path: string): Promise<ModelSummary> {
  const archive = await openArchive(path);
  try {
    return await inspectModel(archive);
  } finally {
    await archive.close();
  }
}

async function runCli(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/main.ts", "inspect", ...args],
    cwd: fromFileUrl(ROOT),
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await command.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

function checkStoriesQ40(summary: ModelSummary): void {
  assert.equal(summary.graph, "network");
  assert.deepEqual(summary.symbols, ["S", "P"]);
  assert.deepEqual(summary.asserts, [
    { scenario: null, expr: "P >= 0" },
    { scenario: null, expr: "S >= 1" },
    { scenario: null, expr: "S+P < 512" },
    { scenario: "tg", expr: "S==1" },
    { scenario: "pp", expr: "P==0" },
  ]);
  assert.equal(summary.inputs.length, 11);
  assert.equal(summary.outputs.length, 11);
  assert.deepEqual(summary.inputs[0], { name: "input_ids", shape: [1, "S"], dtype: "i64" });
  assert.deepEqual(summary.inputs[1], {
    name: "in_cache_key_0",
    shape: [1, 4, "P", 8],
    dtype: "f32",
  });
  assert.equal(summary.outputs[0]!.name, "outputs");
  assert.equal(summary.outputs[10]!.name, "out_cache_value_4");
  assert.ok(summary.q40TensorCount > 0);
  assert.equal(summary.tensorsByType["q40"]?.count, summary.q40TensorCount);
  const byTypeCount = Object.values(summary.tensorsByType).reduce((n, t) => n + t.count, 0);
  assert.equal(byTypeCount, summary.tensorCount);
  assert.ok(summary.fragments.includes("tract_core_properties"));
  assert.equal(summary.properties["compression_method"], "min_max_q4_0_with_embeddings");
}

Deno.test("inspectModel reports symbols, 11 inputs and outputs and Q4_0 tensors of stories260K_q40", async () => {
  checkStoriesQ40(await inspectFile(Q40));
});

Deno.test("inspectModel reports no Q4_0 tensors for the f32 export", async () => {
  const summary = await inspectFile(F32);
  assert.equal(summary.q40TensorCount, 0);
  assert.equal(summary.inputs.length, 11);
  assert.ok((summary.tensorsByType["f32"]?.count ?? 0) > 0);
});

Deno.test("inspect CLI prints exactly one JSON object with --json", async () => {
  const { code, stdout, stderr } = await runCli(Q40, "--json");
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 1);
  const summary = JSON.parse(lines[0]!);
  checkStoriesQ40(summary);
  assert.deepEqual(summary.outputs[0], { name: "outputs", dtype: "f32", shape: [1, 1, 512] });
  assert.deepEqual(summary.outputs[1].shape, [1, 4, "P+S", 8]);
});

Deno.test("inspect CLI prints a readable report", async () => {
  const { code, stdout, stderr } = await runCli(Q40);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^graph\s+network \(NNEF 1\.0\)$/m);
  assert.match(stdout, /^symbols\s+S, P$/m);
  assert.match(stdout, /tg: S==1; pp: P==0/);
  assert.match(stdout, /^inputs \(11\)$/m);
  assert.match(stdout, /^ {2}in_cache_key_0\s+f32\s+\[1, 4, P, 8\]$/m);
  assert.match(stdout, /^outputs \(11\)$/m);
  assert.match(stdout, /^ {2}out_cache_value_4\s+f32\s+\[1, 4, P\+S, 8\]$/m);
  assert.match(stdout, /Q4_0 tensors: [1-9]\d*/);
});

Deno.test("inspect CLI fails cleanly on a missing file and on bad usage", async () => {
  const missing = await runCli("does-not-exist.nnef.tgz", "--json");
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, "");
  assert.match(missing.stderr, /^rill inspect: .*does-not-exist\.nnef\.tgz/);
  const usage = await runCli();
  assert.equal(usage.code, 2);
  assert.match(
    usage.stderr,
    /^rill inspect: the model is missing: give an archive, a GGUF file or a folder\nUsage: rill inspect/,
  );
});

Deno.test("inspect CLI converts a GGUF file into the cache once and reports the archive", async () => {
  const cache = await Deno.makeTempDir({ prefix: "rill_inspect_" });
  try {
    const gguf = new URL("../../shared/fixtures/gguf/llama-2-tiny-random.gguf", import.meta.url)
      .pathname;
    const first = await runCli(gguf, "--json", "--cache-dir", cache);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /converting the GGUF file .*llama-2-tiny-random\.gguf to Q4_0/);
    const summary = JSON.parse(first.stdout);
    assert.equal(summary.properties.source_format, "gguf");
    assert.deepEqual(summary.symbols, ["S", "P"]);
    const second = await runCli(gguf, "--json", "--cache-dir", cache);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /converted earlier/);
    assert.equal(second.stdout, first.stdout);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});
