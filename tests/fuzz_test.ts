/**
 * Seeded, bounded fuzzing of everything that reads untrusted bytes: mutated copies of the real
 * stories260K archives (made here in a temp dir: truncations, bit flips in tar and `.dat`
 * headers and payloads, graph text edits, hostile and duplicate names, lying sizes, gzip
 * bombs) through inspect and load (TypeScript and WASM kernels), broken converter inputs, a
 * hostile model server, and hostile HTTP bodies against the service. Each case must end, within
 * a bounded memory, either with a clear error (a built-in error class, a message naming what is
 * wrong and where) or with the original's output when the change was one a size, shape, hash or
 * CRC can tell. `RILL_FUZZ_CASES` (mutants per kind, default 4) and `RILL_FUZZ_SEED` scale it;
 * `tests/fuzz_corpus.ts` runs a larger corpus through the CLI as subprocesses.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadKernels } from "../kernels/mod.ts";
import { convertModel } from "../models/convert.ts";
import { createSession } from "../src/engine/session.ts";
import { loadModel } from "../src/graph/load_model.ts";
import { openArchive } from "../src/nnef/archive.ts";
import { inspectModel } from "../src/nnef/inspect.ts";
import {
  ARCHIVE_KINDS,
  type ArchiveBase,
  archiveBase,
  type ArchiveKind,
  archiveMutant,
  CONVERTER_KINDS,
  type ConverterKind,
  converterMutant,
  type Mutant,
  seeded,
  writeSmallHf,
} from "./_mutations.ts";
import { startServer } from "./_serve_harness.ts";
import { fixture } from "./_stories260k.ts";
import { runRill } from "./_cli_run.ts";

const PER_KIND = Number(Deno.env.get("RILL_FUZZ_CASES") ?? 4);
const SEED = Number(Deno.env.get("RILL_FUZZ_SEED") ?? 1);
/** The export mutated (a stories260K variant: f32, q40, f32_sdpa, q40_sdpa). */
const VARIANT = Deno.env.get("RILL_FUZZ_VARIANT") ?? "f32";
const PROMPT = [1, 403, 407, 261, 378];
/** A case that has not ended by then hangs. */
const CASE_LIMIT_MS = 30_000;
/** Peak resident memory allowed over the whole run. */
const MEMORY_LIMIT = 1 << 30;

/**
 * Mutants that found bugs, kept as they are: each ran to a crash, a hang or a silent wrong
 * output before the fix named beside it.
 */
const REGRESSIONS: readonly {
  readonly variant: string;
  readonly kind: ArchiveKind;
  readonly seed: number;
}[] = [
  // "stored undefined": a tar checksum field that is not octal (tar.ts says so now).
  { variant: "f32", kind: "tar-header", seed: 1000 },
  // select renamed reshape: reshape read axes past its input's rank (a TypeError of JS).
  { variant: "f32", kind: "graph-text", seed: 3023 },
  // axis = 1.5 for an integer: a slice of fractional bounds, then a JS TypeError in min.
  { variant: "q40", kind: "graph-text", seed: 6010 },
  // The item type of a small .dat flipped to u32: decoded as integers behind a variable<scalar>
  // and run with other logits.
  { variant: "f32", kind: "dat-header", seed: 9005 },
];

/** Converter inputs that found bugs, kept as they are. */
const CONVERTER_REGRESSIONS: readonly { readonly kind: ConverterKind; readonly seed: number }[] = [
  // A null config field was reported as "found undefined".
  { kind: "hf-config", seed: 1003 },
  // A llama2.c tokenizer cut at a token boundary converted with fewer tokens than the vocabulary.
  { kind: "llama2c-tokenizer", seed: 3006 },
  // num_hidden_layers = 2^40: listing the weights of every layer ran out of memory (corpus).
  { kind: "hf-config", seed: 79027 },
];

/** JavaScript's own errors, which mean a missing check rather than a reported fault. */
const INTERNAL =
  /Cannot read propert|is not a function|is not iterable|\bundefined\b|\bNaN\b|\[object |Maximum call stack|Invalid array length|Invalid typed array length|out of bounds|Array buffer allocation failed|Cannot convert/;

const CLEAR_CLASSES: readonly ErrorConstructor[] = [Error, TypeError, RangeError, SyntaxError];

/** Asserts that `e` is a clear error: a built-in class, a message without internals. */
function assertClear(e: unknown, context: string): void {
  assert.ok(e instanceof Error, `${context}: threw ${String(e)}`);
  const known = CLEAR_CLASSES.includes(e.constructor as ErrorConstructor) ||
    Object.values(Deno.errors).some((cls) => e instanceof cls);
  assert.ok(known, `${context}: ${e.constructor.name}: ${e.message}`);
  assert.ok(e.message.length > 0, `${context}: empty message`);
  assert.doesNotMatch(e.message, INTERNAL, `${context}: ${e.name}: ${e.message}`);
}

/** `run()` or a failure naming `context` when it does not end within the case limit. */
async function bounded<T>(context: string, run: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${context}: no end within ${CASE_LIMIT_MS} ms`)),
      CASE_LIMIT_MS,
    );
  });
  try {
    return await Promise.race([run(), limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** Tracks the peak RSS while the fuzz tests run. */
class MemoryWatch {
  peak = Deno.memoryUsage().rss;
  #timer = setInterval(() => this.sample(), 10);
  sample(): void {
    this.peak = Math.max(this.peak, Deno.memoryUsage().rss);
  }
  stop(): number {
    clearInterval(this.#timer);
    this.sample();
    return this.peak;
  }
}

type Outcome = { readonly logits: Float32Array } | { readonly error: unknown };

/** Inspects, then loads and prefills `path` (TypeScript graph, or WASM kernels when asked). */
async function runArchive(path: string, kernels: boolean): Promise<Outcome> {
  try {
    const archive = await openArchive(path, { cache: false });
    try {
      await inspectModel(archive);
    } finally {
      await archive.close();
    }
  } catch (error) {
    return { error };
  }
  if (!kernels) {
    try {
      const model = await loadModel(path, { open: { cache: false } });
      const session = await createSession(model, { kernels: false });
      return { logits: session.prefill(PROMPT) };
    } catch (error) {
      return { error };
    }
  }
  const k = await loadKernels({ threads: 1 });
  try {
    const model = await loadModel(path, { kernels: k, lazy: true, open: { cache: false } });
    try {
      const session = await createSession(model, { kernels: k });
      const logits = await session.prefillAsync(PROMPT);
      await model.weightsReady;
      return { logits };
    } finally {
      await model.weightsReady.catch(() => {});
    }
  } catch (error) {
    return { error };
  } finally {
    k.close();
  }
}

function sameLogits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]! - b[i]!) > 1e-4) return false;
  return true;
}

/**
 * Runs one archive mutant against `reference`, the original's logits on the same path (the
 * kernels quantize activations); returns what it did, for the summary.
 */
async function checkMutant(
  mutant: Mutant,
  dir: string,
  reference: Float32Array,
  kernels: boolean,
): Promise<"refused" | "same" | "changed"> {
  const path = join(dir, `${mutant.id.replace("#", "-")}${mutant.file}`);
  await Deno.writeFile(path, mutant.bytes);
  const context = `${mutant.id} (${mutant.what}; ${kernels ? "kernels" : "TypeScript"})`;
  try {
    const outcome = await bounded(context, () => runArchive(path, kernels));
    if ("error" in outcome) {
      assertClear(outcome.error, context);
      return "refused";
    }
    if (sameLogits(outcome.logits, reference)) return "same";
    assert.ok(
      !mutant.detectable,
      `${context}: loaded and ran with other logits (a silent wrong output)`,
    );
    return "changed";
  } finally {
    await Deno.remove(path);
  }
}

/** A stories260K export, its containers, and its logits on both paths. */
interface Subject {
  readonly base: ArchiveBase;
  readonly reference: Float32Array;
  readonly kernelReference: Float32Array;
}

async function subject(variant: string, dir: string): Promise<Subject> {
  const original = fixture(`nnef/stories260K_${variant}.nnef.tgz`);
  const base = await archiveBase(dir, original);
  const reference = await runArchive(original, false);
  const kernelReference = await runArchive(original, true);
  assert.ok("logits" in reference && "logits" in kernelReference);
  return { base, reference: reference.logits, kernelReference: kernelReference.logits };
}

Deno.test("fuzz: mutated stories260K archives are refused clearly or give the original output", async () => {
  const dir = await Deno.makeTempDir();
  const watch = new MemoryWatch();
  try {
    const subjects = new Map<string, Promise<Subject>>();
    const cases = [
      ...REGRESSIONS,
      ...ARCHIVE_KINDS.flatMap((kind) =>
        Array.from({ length: PER_KIND }, (_, i) => ({
          variant: VARIANT,
          kind,
          seed: SEED * 1000 + i,
        }))
      ),
    ];
    const tally: Record<string, number> = { refused: 0, same: 0, changed: 0 };
    const failures: string[] = [];
    for (const { variant, kind, seed } of cases) {
      if (!subjects.has(variant)) subjects.set(variant, subject(variant, dir));
      const { base, reference, kernelReference } = await subjects.get(variant)!;
      const mutant = await archiveMutant(base, kind, seed, dir);
      const kernels = seed % 3 === 0;
      try {
        tally[await checkMutant(mutant, dir, kernels ? kernelReference : reference, kernels)]!++;
      } catch (e) {
        failures.push(`${variant} ${(e as Error).message}`);
      }
      watch.sample();
    }
    assert.deepEqual(failures, [], `${failures.length} failures:\n${failures.join("\n")}`);
    const peak = watch.stop();
    console.log(
      `${cases.length} archive mutants: ${tally.refused} refused, ${tally.same} unchanged output, ` +
        `${tally.changed} changed output (undetectable changes); peak RSS ${
          (peak / 2 ** 20).toFixed(0)
        } MiB`,
    );
    assert.ok(peak < MEMORY_LIMIT, `peak RSS ${peak} bytes`);
  } finally {
    watch.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, prefix))) {
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory) out.push(...await filesUnder(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

Deno.test("fuzz: broken converter inputs fail clearly, and nothing is written but the output", async () => {
  const root = await Deno.makeTempDir();
  const watch = new MemoryWatch();
  try {
    const hf = join(root, "original");
    await writeSmallHf(hf);
    const failures: string[] = [];
    let refused = 0;
    let converted = 0;
    const perKind = Math.max(1, PER_KIND >> 1);
    const cases = [
      ...CONVERTER_REGRESSIONS,
      ...CONVERTER_KINDS.flatMap((kind) =>
        Array.from({ length: perKind }, (_, i) => ({ kind, seed: SEED * 1000 + i }))
      ),
    ];
    for (const { kind, seed } of cases) {
      const dir = join(root, "case");
      await Deno.mkdir(dir);
      const mutant = await converterMutant(kind, seed, dir, hf);
      const before = await filesUnder(root);
      const output = join(dir, "out", "model.nnef.tar");
      const context = `${mutant.id} (${mutant.what})`;
      let error: unknown = null;
      try {
        await bounded(context, () =>
          convertModel(mutant.input, output, {
            ...(mutant.tokenizer === undefined ? {} : { tokenizer: mutant.tokenizer }),
          }));
      } catch (e) {
        error = e;
      }
      try {
        const after = await filesUnder(root);
        if (error === null) {
          converted++;
          assert.ok(!mutant.mustFail, `${context}: converted without an error`);
          assert.deepEqual(after, [...before, "case/out/model.nnef.tar"].sort(), context);
        } else {
          refused++;
          assertClear(error, context);
          assert.deepEqual(after, before, `${context}: files left behind`);
        }
      } catch (problem) {
        failures.push((problem as Error).message);
      }
      await Deno.remove(dir, { recursive: true });
      watch.sample();
    }
    assert.deepEqual(failures, [], `${failures.length} failures:\n${failures.join("\n")}`);
    const peak = watch.stop();
    console.log(
      `${refused + converted} converter inputs: ${refused} refused, ${converted} converted; ` +
        `peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB`,
    );
    assert.ok(peak < MEMORY_LIMIT, `peak RSS ${peak} bytes`);
  } finally {
    watch.stop();
    await Deno.remove(root, { recursive: true });
  }
});

/** A valid chat completions body, and the fields the fuzzer sets in it. */
const OPENAI_CHAT = {
  valid: {
    model: "stories260K",
    messages: [{ role: "user", content: "Once upon a time" }],
    max_tokens: 2,
    temperature: 0,
  },
  keys: [
    "model",
    "messages",
    "max_tokens",
    "temperature",
    "stream",
    "stop",
    "n",
    "top_p",
    "seed",
    "logit_bias",
    "stream_options",
    "response_format",
    "prediction",
    "__proto__",
    "constructor",
  ],
};

/** Valid bodies of Ollama's chat and generate, and the fields the fuzzer sets in them. */
const OLLAMA_BODIES = {
  "/api/chat": {
    model: "stories260K",
    messages: [{ role: "user", content: "Once upon a time" }],
    options: { num_predict: 2, temperature: 0 },
    stream: false,
  },
  "/api/generate": {
    model: "stories260K",
    prompt: "Once upon a time",
    options: { num_predict: 2, temperature: 0 },
    stream: false,
  },
};
const OLLAMA_KEYS = [
  "model",
  "messages",
  "prompt",
  "options",
  "stream",
  "format",
  "think",
  "tools",
  "context",
  "raw",
  "system",
  "suffix",
  "logprobs",
  "top_logprobs",
  "keep_alive",
  "__proto__",
  "constructor",
];

/**
 * Valid bodies of llama.cpp's completion and infill, of rerank and of vLLM's score, and the fields
 * the fuzzer sets in them.
 */
const LLAMA_CPP_BODIES = {
  "/completion": { prompt: "Once upon a time", n_predict: 2, temperature: 0 },
  "/infill": { input_prefix: "Once", input_suffix: "end", n_predict: 2 },
  "/v1/rerank": { query: "Once", documents: ["a", { text: "b" }], top_n: 1 },
  "/v1/score": { text_1: "Once", text_2: ["a", "b"] },
};
const LLAMA_CPP_KEYS = [
  "prompt",
  "input_prefix",
  "input_suffix",
  "input_extra",
  "n_predict",
  "samplers",
  "dry_multiplier",
  "dry_sequence_breakers",
  "dry_penalty_last_n",
  "xtc_probability",
  "xtc_threshold",
  "top_n_sigma",
  "logit_bias",
  "n_probs",
  "n_indent",
  "t_max_predict_ms",
  "response_fields",
  "stop",
  "seed",
  "grammar",
  "json_schema",
  "stream",
  "query",
  "documents",
  "texts",
  "top_n",
  "instruction",
  "text_1",
  "text_2",
  "__proto__",
];

/** A request body made from `valid`, broken in a way drawn from `random` (or in `keys`). */
function hostileBody(
  random: () => number,
  { valid, keys }: { valid: Record<string, unknown>; keys: readonly string[] } = OPENAI_CHAT,
): { body: BodyInit; type: string; what: string } {
  const text = JSON.stringify(valid);
  const values: unknown[] = [
    null,
    -1,
    0,
    1e308,
    -1e308,
    2 ** 53 + 1,
    "x".repeat(100_000),
    [],
    {},
    [[[[[[[[[[[[]]]]]]]]]]]],
    true,
    "\u0000\ud800",
    { __proto__: { polluted: true } },
  ];
  const form = Math.floor(random() * 8);
  switch (form) {
    case 0: {
      const bytes = new TextEncoder().encode(text);
      for (let i = 0; i < 1 + Math.floor(random() * 4); i++) {
        bytes[Math.floor(random() * bytes.length)]! ^= 1 << Math.floor(random() * 8);
      }
      return { body: bytes, type: "application/json", what: "flipped bits" };
    }
    case 1: {
      const key = keys[Math.floor(random() * keys.length)]!;
      const value = values[Math.floor(random() * values.length)];
      const body = { ...valid, [key]: value };
      return {
        body: JSON.stringify(body),
        type: "application/json",
        what: `${key} = ${JSON.stringify(value)?.slice(0, 40)}`,
      };
    }
    case 2: {
      const value = values[Math.floor(random() * values.length)];
      const message = {
        role: ["user", "system", "tool", "", 7][Math.floor(random() * 5)],
        content: value,
      };
      return {
        body: JSON.stringify({ ...valid, messages: [message] }),
        type: "application/json",
        what: `message ${JSON.stringify(message).slice(0, 60)}`,
      };
    }
    case 3:
      return { body: "[".repeat(100_000), type: "application/json", what: "deep nesting" };
    case 4:
      return {
        body: new Uint8Array([0x7b, 0xff, 0xfe, 0x22, 0x80, 0x7d]),
        type: "application/json",
        what: "invalid UTF-8",
      };
    case 5:
      return { body: "", type: "application/json", what: "empty body" };
    case 6:
      return {
        body: "x".repeat(4 * 1024 * 1024 + 1),
        type: "application/json",
        what: "past the size limit",
      };
    default:
      return {
        body: text,
        type: ["text/plain", "application/x-www-form-urlencoded", ""][Math.floor(random() * 3)]!,
        what: "another content type",
      };
  }
}

/** Request bodies that found bugs, kept as they are. */
const BODY_REGRESSIONS: readonly { readonly path: string; readonly body: unknown }[] = [
  // "'response_format.type' must be one of ..., got undefined" (seed 11).
  {
    path: "/v1/chat/completions",
    body: { messages: [{ role: "user", content: "x" }], response_format: {} },
  },
];

/** A request the fuzzer sends, and what it broke. */
interface HostileCase {
  readonly path: string;
  readonly body: BodyInit;
  readonly type: string;
  readonly what: string;
}

/**
 * Posts each case; the failures (a 5xx, or an error whose message, read from the body's
 * `error` by `messageOf`, is no clear string) and how many answers had each status.
 */
async function postHostile(
  url: string,
  cases: readonly HostileCase[],
  messageOf: (error: unknown) => unknown,
): Promise<{ failures: string[]; statuses: Map<number, number> }> {
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  for (const { path, body, type, what } of cases) {
    const headers = type === "" ? {} : { "content-type": type };
    const response = await bounded(
      `${path} ${what}`,
      () => fetch(`${url}${path}`, { method: "POST", headers, body }),
    );
    const text = await response.text();
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    if (response.status >= 500) {
      failures.push(`${path} ${what}: ${response.status} ${text.slice(0, 200)}`);
    } else if (response.status !== 200) {
      const message = messageOf(JSON.parse(text).error);
      if (typeof message !== "string" || INTERNAL.test(message)) {
        failures.push(`${path} ${what}: unclear error ${text.slice(0, 200)}`);
      }
    }
  }
  return { failures, statuses };
}

/** The message of an error body in the OpenAI shape, `{"error": {"message"}}`. */
function openAiMessage(error: unknown): unknown {
  return (error as { message?: unknown } | undefined)?.message;
}

/** The server still answers `/health`, and no case failed. */
async function assertStillUp(url: string, failures: readonly string[]): Promise<void> {
  const health = await fetch(`${url}/health`);
  assert.equal(health.status, 200);
  await health.body?.cancel();
  assert.deepEqual(failures, [], failures.join("\n"));
}

Deno.test("fuzz: hostile Ollama bodies get a 4xx or an answer, never a 5xx, with Ollama's error shape", async () => {
  await using server = await startServer({ maxTokensCap: 2 });
  const random = seeded(SEED + 1);
  const paths = Object.keys(OLLAMA_BODIES) as (keyof typeof OLLAMA_BODIES)[];
  const cases = Array.from({ length: 8 * PER_KIND }, () => {
    const path = paths[Math.floor(random() * paths.length)]!;
    // Half of them break an option rather than a field.
    const valid = OLLAMA_BODIES[path];
    const options = random() < 0.5;
    const broken = hostileBody(
      random,
      options
        ? { valid: valid.options, keys: ["num_predict", "temperature", "stop", "seed", "top_k"] }
        : { valid, keys: OLLAMA_KEYS },
    );
    const body = options && typeof broken.body === "string"
      ? `{"model": "stories260K", "prompt": "x", "stream": false, "options": ${broken.body}}`
      : broken.body;
    return { path, ...broken, body };
  });
  const { failures } = await postHostile(server.url, cases, (error) => error);
  await assertStillUp(server.url, failures);
});

Deno.test("fuzz: hostile llama.cpp, rerank and score bodies get a 4xx or an answer, never a 5xx", async () => {
  await using server = await startServer({ maxTokensCap: 2 });
  const random = seeded(SEED + 2);
  const paths = Object.keys(LLAMA_CPP_BODIES) as (keyof typeof LLAMA_CPP_BODIES)[];
  const cases = Array.from({ length: 8 * PER_KIND }, () => {
    const path = paths[Math.floor(random() * paths.length)]!;
    return {
      path,
      ...hostileBody(random, { valid: LLAMA_CPP_BODIES[path], keys: LLAMA_CPP_KEYS }),
    };
  });
  const { failures } = await postHostile(
    server.url,
    cases,
    openAiMessage,
  );
  await assertStillUp(server.url, failures);
});

Deno.test("fuzz: hostile request bodies get a 4xx or an answer, never a 5xx, and the server stays up", async () => {
  await using server = await startServer({ maxTokensCap: 2 });
  const random = seeded(SEED);
  const cases = [
    ...BODY_REGRESSIONS.map(({ path, body }) => ({
      path,
      body: JSON.stringify(body) as BodyInit,
      type: "application/json",
      what: JSON.stringify(body),
    })),
    ...Array.from({ length: 12 * PER_KIND }, () => ({
      path: random() < 0.5 ? "/v1/chat/completions" : "/v1/completions",
      ...hostileBody(random),
    })),
  ];
  const { failures, statuses } = await postHostile(
    server.url,
    cases,
    openAiMessage,
  );
  await assertStillUp(server.url, failures);
  console.log(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
});

const MISBEHAVIOURS = [
  "shifted-range",
  "short-body",
  "long-body",
  "other-bytes",
  "status-500",
  "status-404",
  "wrong-total",
  "garbage-body",
  "etag-change",
  "trickle",
] as const;

/**
 * A model server that answers the first request (the probe) honestly, then each request with
 * `misbehaviour` when `random` says so (about half of them), else honestly.
 */
function hostileModelServer(
  bytes: Uint8Array,
  misbehaviour: typeof MISBEHAVIOURS[number],
  random: () => number,
) {
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("range") ?? "");
    const start = m ? Number(m[1]) : 0;
    const end = m ? Math.min(Number(m[2]), bytes.length - 1) : bytes.length - 1;
    let body = bytes.slice(start, end + 1) as Uint8Array<ArrayBuffer>;
    const headers = new Headers({
      "content-range": `bytes ${start}-${end}/${bytes.length}`,
      etag: '"v1"',
    });
    const honest = requests++ === 0 || random() < 0.5;
    if (honest) return new Response(body, { status: m ? 206 : 200, headers });
    switch (misbehaviour) {
      case "shifted-range":
        headers.set("content-range", `bytes ${start + 1}-${end + 1}/${bytes.length}`);
        break;
      case "short-body":
        body = body.slice(0, body.length >> 1);
        break;
      case "long-body":
        body = bytes.slice(start, Math.min(bytes.length, end + 1 + 4096)) as Uint8Array<
          ArrayBuffer
        >;
        break;
      case "other-bytes":
        body = body.slice();
        body[body.length >> 1]! ^= 0x40;
        break;
      case "status-500":
        return new Response("broken", { status: 500 });
      case "status-404":
        return new Response("gone", { status: 404 });
      case "wrong-total":
        headers.set("content-range", `bytes ${start}-${end}/${bytes.length + 512}`);
        break;
      case "garbage-body":
        body = body.map(() => Math.floor(random() * 256));
        break;
      case "etag-change":
        headers.set("etag", '"v2"');
        break;
      case "trickle": {
        let at = 0;
        const slow = new ReadableStream<Uint8Array>({
          async pull(controller) {
            await new Promise((r) => setTimeout(r, 50));
            controller.enqueue(body.subarray(at, at + 64));
            at += 64;
            if (at >= body.length) controller.close();
          },
        });
        return new Response(slow, { status: 206, headers });
      }
    }
    return new Response(body, { status: 206, headers });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

Deno.test("fuzz: a hostile model server makes the load fail clearly or gives the original output", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const base = await archiveBase(dir, fixture("nnef/stories260K_f32.nnef.tgz"));
    const local = join(dir, "local.nnef.tar");
    await Deno.writeFile(local, base.indexed);
    const reference = await runArchive(local, false);
    assert.ok("logits" in reference);
    const failures: string[] = [];
    const tally = { refused: 0, same: 0 };
    for (const [i, misbehaviour] of MISBEHAVIOURS.entries()) {
      const random = seeded(SEED * 100 + i);
      const server = hostileModelServer(base.indexed, misbehaviour, random);
      const context = `${misbehaviour} server`;
      try {
        const outcome = await bounded(context, async (): Promise<Outcome> => {
          try {
            const model = await loadModel(`${server.url}/m.nnef.tar`, {
              open: {
                cache: false,
                http: { retries: 2, retryBaseMs: 1, timeoutMs: 1000 },
                loadTimeoutMs: 20_000,
              },
              loader: { memberTimeoutMs: 3000 },
            });
            const session = await createSession(model, { kernels: false });
            return { logits: session.prefill(PROMPT) };
          } catch (error) {
            return { error };
          }
        });
        if ("error" in outcome) {
          tally.refused++;
          assertClear(outcome.error, context);
        } else {
          tally.same++;
          assert.ok(sameLogits(outcome.logits, reference.logits), `${context}: other logits`);
        }
      } catch (e) {
        failures.push((e as Error).message);
      } finally {
        await server.close();
      }
    }
    assert.deepEqual(failures, [], failures.join("\n"));
    console.log(
      `${MISBEHAVIOURS.length} hostile servers: ${tally.refused} loads refused, ` +
        `${tally.same} rode it out with the original output`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fuzz: the CLI ends every mutant with a line and an exit code, in bounded memory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const base = await archiveBase(dir, fixture("nnef/stories260K_f32.nnef.tgz"));
    const failures: string[] = [];
    const kinds: ArchiveKind[] = ["dat-header", "payload", "bomb", "graph-text"];
    const original = await runRill(generateArgs(fixture("nnef/stories260K_f32.nnef.tgz")));
    assert.equal(original.code, 0, original.stderr);
    for (const [i, kind] of kinds.entries()) {
      const mutant = await archiveMutant(base, kind, SEED * 1000 + i, dir);
      const path = join(dir, `${mutant.id.replace("#", "-")}${mutant.file}`);
      await Deno.writeFile(path, mutant.bytes);
      for (const args of [["inspect", path], generateArgs(path)]) {
        const run = await runRill(args, { limitMs: CASE_LIMIT_MS });
        const context = `${args[0]} ${mutant.id} (${mutant.what})`;
        if (run.code === null) failures.push(`${context}: no end within ${CASE_LIMIT_MS} ms`);
        else if (run.code !== 0 && run.code !== 1) {
          failures.push(`${context}: exit code ${run.code}`);
        }
        if (/Uncaught|^\s+at /m.test(run.stderr)) failures.push(`${context}: ${run.stderr}`);
        // generate may have printed its speeds before a late failure.
        if (run.code === 1 && !new RegExp(`^rill ${args[0]}: \\S`, "m").test(run.stderr)) {
          failures.push(`${context}: no one-line message: ${run.stderr}`);
        }
        if (run.peakRss > MEMORY_LIMIT) failures.push(`${context}: peak RSS ${run.peakRss}`);
        if (
          args[0] === "generate" && run.code === 0 && mutant.detectable &&
          run.stdout !== original.stdout
        ) failures.push(`${context}: other text (a silent wrong output): ${run.stdout}`);
      }
    }
    assert.deepEqual(failures, [], failures.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function generateArgs(model: string): string[] {
  return [
    "generate",
    "--model",
    model,
    "--tokenizer",
    fixture("tok512.bin"),
    "--prompt",
    "Once upon a time",
    "--max-tokens",
    "8",
    "--temperature",
    "0",
  ];
}
