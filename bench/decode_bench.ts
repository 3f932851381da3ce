/**
 * `deno task bench:decode`: decode and prefill tokens/s of stories260K (f32 and Q4_0)
 * through a {@link Session}, and in the same run the ratio to the naive reference: the graph
 * as exported (no fusion), where each step concatenates the whole past into a new cache
 * tensor and feeds it back as input. Modes:
 *
 * - `kernels`: fused graph, in-place cache, linears and fused ops in the WASM kernels (the
 *   default of `rill generate`);
 * - `fused`: fused graph and in-place cache in TS;
 * - `append`: graph as exported with the in-place cache, in TS;
 * - `naive`: graph as exported, concat of the whole past, in TS.
 *
 * Then the end-to-end figure of issue 4: a 110M-shape (llama2.c "stories110M": dim 768,
 * 12 layers, 12 heads, hidden 2048, vocab 32000, untied classifier) random-weight model
 * written by the converter into a temp dir (every linear, the classifier included, in Q4_0),
 * decode tokens/s at 1 and 2 threads (medians of rounds alternating the two, and the median
 * of the rounds' ratios, `random110M_q40_decode_2t_over_1t`); then 8 sequences decoding
 * together (`Session.step`) at 2 threads, with the batch replay and without, in alternating
 * rounds: tokens/s of each and `random110M_q40_batch8_replay_speedup`, the median of the
 * rounds' ratios (skip all of it with RILL_BENCH_110M=0). Then predicted outputs at 1 and 2
 * threads, through the scheduler as serving runs it: greedy decode tokens/s of 128 tokens
 * with a prediction over without (`random110M_q40_predicted_exact_{1,2}t`: the prediction is
 * the answer itself; `..._edited_...`: every 16th of its tokens changed), medians of rounds
 * alternating the three.
 *
 * Then `sampled_ratio` (issue 14): through the serving generation loop, on a random model of
 * SmolLM2-135M's shape (a 49152-token vocabulary; converted once into
 * `$RILL_CACHE_DIR/bench/`, default `~/.cache/rill/bench/`), tokens/s sampled at temperature 1
 * with top-p 0.95 over tokens/s greedy (skip with RILL_BENCH_SAMPLED=0).
 *
 * Then structured output (issue 15, skip with RILL_BENCH_CONSTRAINED=0): the same model with
 * its real tokenizer (SmolLM2's 49152 tokens) generates through the serving loop with and
 * without a JSON-schema constraint (20 properties), rounds pairing the two back to back;
 * `constrained_ratio` is the median of constrained over unconstrained decode tokens/s sampled
 * (temperature 1, top-p 0.95), `constrained_ratio_greedy` the same at temperature 0, and
 * `schema_compile_ms` the compile time of the schema (first in the process, and median of 20).
 *
 * Then Gemma 3 (skip with RILL_BENCH_GEMMA=0): a random model of Gemma 3 270M's shape (f16
 * safetensors converted to Q4_0 once, into the same cache), one thread: prefill and decode
 * tokens/s inside its 512-position window and past it, where 15 of its 18 layers read a window
 * of the paged cache; `random_gemma3_270m_past_window_ratio` is decode past the window over
 * decode inside it (medians of 3 rounds).
 *
 * Prints one line per case, then one JSON line.
 */
import { CONVERTER_VERSION } from "../models/convert.ts";
import { loadModel } from "../src/graph/load_model.ts";
import type { Model } from "../src/graph/model.ts";
import { cacheLayouts, Session, type SessionOptions } from "../src/engine/session.ts";
import { KvPool } from "../src/scheduler/kv_pool.ts";
import { argmax } from "../src/engine/sampler.ts";
import { type Kernels, loadKernels } from "../kernels/mod.ts";
import {
  SMOLLM2_135M_SHAPE,
  writeRandom110MArchive,
  writeRandomGemma3Archive,
  writeRandomLlamaArchive,
} from "./_random_llama.ts";
import { loadService, modelScheduler } from "../src/engine/load_service.ts";
import { PredictionDraft } from "../src/engine/prediction_draft.ts";
import type { InferenceService } from "../src/engine/service.ts";
import type { SamplingOptions } from "../src/engine/sampler.ts";
import { compileJsonSchema } from "../src/engine/constrain/json_schema.ts";
import { GrammarConstraint, VocabGrammar } from "../src/engine/constrain/constraint.ts";
import { vocabTrie } from "../src/engine/constrain/vocab_trie.ts";
import { median } from "./_median.ts";

const FIXTURES = new URL("../../shared/fixtures/stories260K/nnef/", import.meta.url);
const PROMPT = [1, 403, 407, 261, 378];
// 500 positions: the context of stories260K is 512 (`S+P < 512`), the longer the past the
// more the naive concat of the whole cache costs.
const STEPS = Number(Deno.env.get("RILL_BENCH_STEPS") ?? 500 - PROMPT.length);
const PREFILL = 128;
/** The 110M-shape decode: thread counts, alternating rounds, tokens per round. */
const DECODE_THREADS = [1, 2];
const DECODE_ROUNDS = 5;
const DECODE_STEPS = 48;
/** Sequences stepped together, and steps per round, in the batched rounds. */
const BATCH = 8;
const BATCH_STEPS = 24;

type Mode = "kernels" | "fused" | "append" | "naive";
const MODES: readonly Mode[] = ["kernels", "fused", "append", "naive"];

interface Result {
  readonly model: string;
  readonly mode: Mode;
  readonly tokensPerSecond: number;
  readonly prefillTokensPerSecond: number;
}

function measureDecode(session: Session, steps: number): { decode: number; ids: number[] } {
  session.reset();
  let logits = session.prefill(PROMPT);
  const t1 = performance.now();
  const ids: number[] = [];
  for (let i = 0; i < steps; i++) {
    const id = argmax(logits);
    ids.push(id);
    logits = session.decode(id);
  }
  return { decode: (steps / (performance.now() - t1)) * 1000, ids };
}

function measurePrefill(session: Session, prompt: readonly number[]): number {
  session.reset();
  const t0 = performance.now();
  session.prefill(prompt);
  return (prompt.length / (performance.now() - t0)) * 1000;
}

function options(mode: Mode, kernels: Kernels): SessionOptions {
  switch (mode) {
    case "kernels":
      return { kernels };
    case "fused":
      return {};
    case "append":
      return { fuse: false };
    case "naive":
      return { fuse: false, appendInPlace: false };
  }
}

async function stories(kernels: Kernels, results: Result[], ratios: Record<string, number>) {
  for (const name of ["stories260K_f32", "stories260K_q40"]) {
    const model = await loadModel(new URL(`${name}.nnef.tgz`, FIXTURES).pathname);
    const sessions = new Map(MODES.map((m) => [m, new Session(model, options(m, kernels))]));
    // Warm up the JIT on every path, then alternate and keep the best of 2 runs each, so that
    // all see the same machine noise.
    const prompt = [...PROMPT, ...measureDecode(sessions.get("fused")!, PREFILL - 5).ids];
    for (const s of sessions.values()) measureDecode(s, 50);
    const best = new Map<Mode, { decode: number; prefill: number; ids: number[] }>();
    for (let r = 0; r < 2; r++) {
      for (const [mode, s] of sessions) {
        const d = measureDecode(s, STEPS);
        const p = measurePrefill(s, prompt);
        const b = best.get(mode);
        best.set(mode, {
          decode: Math.max(d.decode, b?.decode ?? 0),
          prefill: Math.max(p, b?.prefill ?? 0),
          ids: d.ids,
        });
      }
    }
    const naive = best.get("naive")!;
    for (const mode of ["fused", "append"] as const) {
      if (best.get(mode)!.ids.join() !== naive.ids.join()) {
        throw new Error(`${name}: the ${mode} and naive paths generated different tokens`);
      }
    }
    for (const mode of MODES) {
      const b = best.get(mode)!;
      results.push({
        model: name,
        mode,
        tokensPerSecond: b.decode,
        prefillTokensPerSecond: b.prefill,
      });
      ratios[`${name}_${mode}`] = b.decode / naive.decode;
      console.log(
        `${name} ${mode.padEnd(7)} decode ${b.decode.toFixed(1)} tokens/s (${
          (b.decode / naive.decode).toFixed(2)
        }x naive), prefill ${
          b.prefill.toFixed(1)
        } tokens/s (${STEPS} steps after a ${PROMPT.length}-token prompt; prefill of ${PREFILL} tokens)`,
      );
    }
  }
}

async function random110M(): Promise<Record<string, number>> {
  const dir = await Deno.makeTempDir({ prefix: "rill_bench_110m_" });
  const opened: Kernels[] = [];
  try {
    const archive = `${dir}/model.nnef.tar`;
    const seconds = await writeRandom110MArchive(archive, true);
    console.log(`110M-shape Q4_0 model ready in ${seconds.toFixed(1)}s`);
    // One kernel set per thread count, each holding the model as serving loads it (the
    // weights straight into the kernels, Q4_0 re-laid rows8), measured in alternating rounds.
    const engines: {
      threads: number;
      kernels: Kernels;
      model: Model;
      session: Session;
      last: number;
    }[] = [];
    for (const threads of DECODE_THREADS) {
      const kernels = await loadKernels({ threads });
      opened.push(kernels);
      const model = await loadModel(archive, { kernels });
      const session = new Session(model, { kernels, adaptiveThreads: false, capacity: 1024 });
      // Keep the thread count fixed: this measures 1 vs 2 threads.
      kernels.threads = Math.min(threads, kernels.maxThreads);
      // Warm-up: every kernel and worker past its first calls (the JIT tiers up per thread).
      const prompt = Array.from({ length: 64 }, (_, i) => 1 + ((i * 7919) % 31999));
      let logits = session.prefill(prompt);
      for (let i = 0; i < 16; i++) logits = session.decode(argmax(logits));
      engines.push({ threads, kernels, model, session, last: argmax(logits) });
    }
    const rates = engines.map((): number[] => []);
    for (let round = 0; round < DECODE_ROUNDS; round++) {
      engines.forEach((e, i) => {
        const t = performance.now();
        for (let s = 0; s < DECODE_STEPS; s++) e.last = argmax(e.session.decode(e.last));
        rates[i]!.push((DECODE_STEPS / (performance.now() - t)) * 1000);
      });
    }
    const out: Record<string, number> = {};
    engines.forEach((e, i) => {
      const tps = median(rates[i]!);
      out[`random110M_q40_decode_tps_${e.threads}t`] = tps;
      console.log(
        `110M-shape Q4_0 decode ${
          tps.toFixed(2)
        } tokens/s at ${e.threads} thread(s) (${e.kernels.maxThreads} available; median of ${DECODE_ROUNDS} rounds of ${DECODE_STEPS} tokens, ${
          rates[i]!.map((r) => r.toFixed(0)).join(" ")
        })`,
      );
    });
    const ratio = median(rates[1]!.map((r, k) => r / rates[0]![k]!));
    out.random110M_q40_decode_2t_over_1t = ratio;
    console.log(
      `110M-shape Q4_0 decode, 2 threads over 1: ${
        ratio.toFixed(2)
      }x (median of the rounds' ratios)`,
    );
    const two = engines.find((e) => e.threads === 2)!;
    Object.assign(out, await batched(two.model, two.kernels));
    for (const e of engines) Object.assign(out, await predicted(e.model, e.kernels, e.threads));
    return out;
  } finally {
    for (const k of opened) k.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * `BATCH` sequences decoding together through `Session.step`, one group replaying the steps
 * that repeat and one walking them all, in alternating rounds on the same kernels.
 */
async function batched(model: Model, kernels: Kernels): Promise<Record<string, number>> {
  const positions = 64 + BATCH_STEPS * (DECODE_ROUNDS + 1);
  const blocks = 2 * BATCH * Math.ceil(positions / 16);
  const pool = new KvPool(cacheLayouts(model), { blocks, kernels });
  const group = (replay: boolean) =>
    Array.from({ length: BATCH }, (_, i) => {
      const session = new Session(model, { kernels, adaptiveThreads: false, pool, replay });
      const prompt = Array.from({ length: 64 }, (_, j) => 1 + ((j * 7919 + i * 104729) % 31999));
      return { session, last: argmax(session.prefill(prompt)) };
    });
  const groups = [group(true), group(false)];
  const round = async (g: { session: Session; last: number }[]) => {
    const t = performance.now();
    for (let s = 0; s < BATCH_STEPS; s++) {
      const logits = await Session.step(g.map(({ session, last }) => ({ session, ids: [last] })));
      logits.forEach((l, i) => (g[i]!.last = argmax(l)));
    }
    return ((BATCH * BATCH_STEPS) / (performance.now() - t)) * 1000;
  };
  for (const g of groups) await round(g); // warm-up: the replayed group records its plan
  const rates = groups.map((): number[] => []);
  for (let r = 0; r < DECODE_ROUNDS; r++) {
    // Each group first in turn, so that neither always follows the other's idle worker.
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) rates[i]!.push(await round(groups[i]!));
  }
  const speedup = median(rates[0]!.map((v, k) => v / rates[1]![k]!));
  const [replayed, walked] = rates.map(median) as [number, number];
  console.log(
    `110M-shape Q4_0, ${BATCH} sequences decoding together at 2 threads: ${
      replayed.toFixed(1)
    } tokens/s with the batch replay, ${walked.toFixed(1)} walking every step: ${
      speedup.toFixed(2)
    }x (median of ${DECODE_ROUNDS} rounds' ratios; ${
      groups[0]![0]!.session.replayedBatchSteps(new Array(BATCH).fill(1))
    } steps replayed)`,
  );
  return {
    random110M_q40_batch8_tps_2t: replayed,
    random110M_q40_batch8_tps_2t_walked: walked,
    random110M_q40_batch8_replay_speedup: speedup,
  };
}

const PREDICTED_TOKENS = 128;

/**
 * Greedy decode tokens/s through the scheduler without a prediction, with the answer itself as
 * the prediction, and with every 16th token of it changed: rounds alternating the three.
 */
async function predicted(
  model: Model,
  kernels: Kernels,
  threads: number,
): Promise<Record<string, number>> {
  const scheduler = modelScheduler(model, { kernels, kvBudgetBytes: 64 * 1024 * 1024 });
  const prompt = Array.from({ length: 16 }, (_, i) => 1 + ((i * 7919) % 31999));
  /** Tokens/s after the first token, and the tokens, with guesses from `prediction`. */
  const run = async (prediction: readonly number[] | null) => {
    const ids: number[] = [];
    let first = 0;
    const draft = prediction === null ? null : new PredictionDraft(prediction);
    await scheduler.submit({
      prompt,
      maxTokens: PREDICTED_TOKENS,
      next: (logits) => {
        if (ids.length === 0) first = performance.now();
        ids.push(argmax(logits));
        return ids.length >= PREDICTED_TOKENS ? null : ids.at(-1)!;
      },
      ...(draft ? { draft: (most: number) => draft.guess(ids, most) } : {}),
    }).done;
    return { tps: ((ids.length - 1) / (performance.now() - first)) * 1000, ids };
  };
  const answer = (await run(null)).ids;
  const edited = answer.map((id, i) => (i % 16 === 15 ? (id + 1) % 32000 : id));
  const cases = [["plain", null], ["exact", answer], ["edited", edited]] as const;
  const rates = cases.map((): number[] => []);
  for (let round = 0; round < DECODE_ROUNDS; round++) {
    for (const [i, [, prediction]] of cases.entries()) {
      const { tps, ids } = await run(prediction);
      if (ids.join() !== answer.join()) throw new Error("A prediction changed the answer");
      rates[i]!.push(tps);
    }
  }
  const out: Record<string, number> = {};
  const [plain, ...others] = rates.map(median) as [number, number, number];
  others.forEach((tps, i) => {
    const name = cases[i + 1]![0];
    const ratio = median(rates[i + 1]!.map((r, k) => r / rates[0]![k]!));
    out[`random110M_q40_predicted_${name}_${threads}t`] = ratio;
    console.log(
      `110M-shape Q4_0 greedy through the scheduler at ${threads} thread(s), prediction ${name}: ${
        tps.toFixed(1)
      } tokens/s against ${plain.toFixed(1)} without: ${
        ratio.toFixed(2)
      }x (median of ${DECODE_ROUNDS} rounds' ratios)`,
    );
  });
  return out;
}

/**
 * The bench's cached archive `file` (`$RILL_CACHE_DIR/bench/`, keyed by the converter's
 * version), written by `write` (which returns its seconds) on first use.
 */
async function cachedArchive(
  file: string,
  label: string,
  write: (path: string) => Promise<number>,
): Promise<string> {
  const cache = Deno.env.get("RILL_CACHE_DIR") ?? `${Deno.env.get("HOME") ?? "."}/.cache/rill`;
  const path = `${cache}/bench/${file}.c${CONVERTER_VERSION}.nnef.tar`;
  try {
    await Deno.stat(path);
  } catch {
    await Deno.mkdir(`${cache}/bench`, { recursive: true });
    const seconds = await write(path);
    console.log(`${label} random model written to ${path} in ${seconds.toFixed(1)}s`);
  }
  return path;
}

/** The cached random SmolLM2-135M-shape archive, written on first use. */
function randomSmolLM2Archive(): Promise<string> {
  return cachedArchive(
    "random-smollm2-135m.q4_0",
    "SmolLM2-135M-shape Q4_0",
    (path) => writeRandomLlamaArchive(path, SMOLLM2_135M_SHAPE, true),
  );
}

/**
 * Gemma 3 270M's shape, one thread: prefill of positions 0-128 and decode around 140, then
 * prefill up to 600 and decode past the 512-position window (medians of 3 rounds).
 */
async function gemma3(): Promise<Record<string, number>> {
  const path = await cachedArchive(
    "random-gemma3-270m.q4_0",
    "Gemma-3-270M-shape Q4_0",
    writeRandomGemma3Archive,
  );
  using kernels = await loadKernels({ threads: 1 });
  const session = new Session(await loadModel(path, { kernels }), { kernels });
  const ids = (n: number, from: number) =>
    Array.from({ length: n }, (_, i) => 100 + ((from + i) * 37) % 40000);
  const decode = (steps: number) => {
    let logits = session.decode(7);
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) logits = session.decode(argmax(logits));
    return (steps / (performance.now() - t0)) * 1000;
  };
  const rounds: number[][] = [];
  for (let r = 0; r < 3; r++) {
    session.reset();
    let t0 = performance.now();
    session.prefill(ids(128, 0));
    const prefillIn = (128 / (performance.now() - t0)) * 1000;
    const decodeIn = decode(32);
    t0 = performance.now();
    session.prefill(ids(440, 200));
    const prefillPast = (440 / (performance.now() - t0)) * 1000;
    rounds.push([prefillIn, decodeIn, prefillPast, decode(32)]);
  }
  const [prefillIn, decodeIn, prefillPast, decodePast] = [0, 1, 2, 3].map((k) =>
    median(rounds.map((r) => r[k]!))
  );
  console.log(
    `Gemma-3-270M-shape Q4_0, 1 thread: inside the window prefill ${prefillIn!.toFixed(1)}, ` +
      `decode ${decodeIn!.toFixed(1)} tokens/s; past it prefill ${prefillPast!.toFixed(1)}, ` +
      `decode ${decodePast!.toFixed(1)}`,
  );
  return {
    random_gemma3_270m_prefill_tps: prefillIn!,
    random_gemma3_270m_decode_tps: decodeIn!,
    random_gemma3_270m_prefill_past_window_tps: prefillPast!,
    random_gemma3_270m_decode_past_window_tps: decodePast!,
    random_gemma3_270m_past_window_ratio: decodePast! / decodeIn!,
  };
}

/** Decode tokens/s of one generation through the service (prefill excluded). */
async function serviceDecode(
  service: InferenceService,
  sampling: SamplingOptions,
  steps: number,
): Promise<number> {
  let first = 0;
  for await (
    const event of service.generate([1, 400, 500, 600], {
      sampling,
      stop: [],
      maxTokens: steps + 1,
      onFirstToken: () => (first = performance.now()),
    })
  ) {
    if (event.type === "done") {
      if (event.completionTokens < 16) throw new Error("Generation ended too early to time");
      return ((event.completionTokens - 1) / (performance.now() - first)) * 1000;
    }
  }
  throw new Error("Generation ended without a result");
}

/**
 * Sampled (temperature 1, top-p 0.95) over greedy decode tokens/s on a 49152-token vocabulary,
 * through the serving generation loop with the kernels serving uses (medians of 9 rounds).
 */
async function sampledRatio(): Promise<Record<string, number>> {
  const archive = await randomSmolLM2Archive();
  const kernels = await loadKernels();
  try {
    const loaded = await loadService(archive, { modelId: "random-smollm2", kernels, cache: false });
    await loaded.weightsReady;
    const { service } = loaded;
    const greedy: SamplingOptions = { temperature: 0 };
    const sampled: SamplingOptions = { temperature: 1, topP: 0.95, seed: 1 };
    await serviceDecode(service, greedy, 16);
    await serviceDecode(service, sampled, 16);
    // Rounds pair a greedy and a sampled run back to back, so that both see the same machine
    // load; the median of the rounds' ratios is reported.
    const rounds: { greedy: number; sampled: number }[] = [];
    for (let r = 0; r < 9; r++) {
      rounds.push({
        greedy: await serviceDecode(service, greedy, 32),
        sampled: await serviceDecode(service, sampled, 32),
      });
    }
    const greedyTps = median(rounds.map((r) => r.greedy));
    const sampledTps = median(rounds.map((r) => r.sampled));
    const ratio = median(rounds.map((r) => r.sampled / r.greedy));
    console.log(
      `SmolLM2-135M-shape Q4_0 decode: greedy ${greedyTps.toFixed(1)} tokens/s, sampled ` +
        `(temperature 1, top-p 0.95) ${sampledTps.toFixed(1)} tokens/s: ratio ${ratio.toFixed(3)}`,
    );
    return {
      random_smollm2_135m_greedy_tps: greedyTps,
      random_smollm2_135m_sampled_tps: sampledTps,
      sampled_ratio: ratio,
    };
  } finally {
    kernels.close();
  }
}

const SMOLLM2_TOKENIZER = new URL(
  "../../shared/fixtures/tokenizers/smollm2/tokenizer.json",
  import.meta.url,
).pathname;

/** A 20-property schema: strings, bounded integers, enums, arrays of numbers, booleans. */
function twentyProperties(): Record<string, unknown> {
  const kinds = [
    { type: "string" },
    { type: "integer", minimum: 0, maximum: 1000 },
    { enum: ["low", "medium", "high"] },
    { type: "array", items: { type: "number" }, maxItems: 4 },
    { type: "boolean" },
  ];
  const properties: Record<string, unknown> = {};
  for (let i = 0; i < 20; i++) properties[`field_${i}`] = kinds[i % kinds.length];
  return {
    type: "object",
    properties,
    required: Object.keys(properties),
    additionalProperties: false,
  };
}

/** Decode tokens/s of one generation through the service, and its text and mask cost. */
async function constrainedDecode(
  service: InferenceService,
  prompt: number[],
  sampling: SamplingOptions,
  constraint?: GrammarConstraint,
): Promise<{ tps: number; text: string }> {
  let first = 0;
  let text = "";
  for await (
    const event of service.generate(prompt, {
      sampling,
      stop: [],
      maxTokens: 256,
      onFirstToken: () => (first = performance.now()),
      ...(constraint ? { constraint } : {}),
    })
  ) {
    if (event.type === "text") {
      text += event.text;
      continue;
    }
    if (event.type !== "done") continue;
    if (event.completionTokens < 16) throw new Error("Generation ended too early to time");
    return { tps: ((event.completionTokens - 1) / (performance.now() - first)) * 1000, text };
  }
  throw new Error("Generation ended without a result");
}

/**
 * Constrained over unconstrained decode tokens/s under a 20-property schema, on the random
 * SmolLM2-135M-shape model with SmolLM2's tokenizer (medians of 5 paired rounds; each
 * constrained run starts from a fresh grammar, so its states and masks are built while timed).
 */
async function constrainedRatio(): Promise<Record<string, number>> {
  const schema = twentyProperties();
  const compileMs: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    compileJsonSchema(schema);
    compileMs.push(performance.now() - t);
  }
  const out: Record<string, number> = {
    schema_compile_ms: compileMs[0]!,
    schema_compile_median_ms: median(compileMs),
  };
  console.log(
    `20-property schema compile: ${compileMs[0]!.toFixed(2)} ms first, ${
      median(compileMs).toFixed(2)
    } ms median of 20`,
  );
  const archive = await randomSmolLM2Archive();
  const kernels = await loadKernels();
  try {
    const loaded = await loadService(archive, {
      modelId: "random-smollm2",
      tokenizer: SMOLLM2_TOKENIZER,
      kernels,
      cache: false,
    });
    await loaded.weightsReady;
    const { service } = loaded;
    const t = performance.now();
    const trie = vocabTrie(service.tokenizer);
    console.log(
      `vocabulary trie: ${trie.size} nodes for ${service.tokenizer.vocabSize} tokens in ${
        (performance.now() - t).toFixed(0)
      } ms`,
    );
    const prompt = service.encodePrompt(
      service.renderChat([{ role: "user", content: "Fill in the form as JSON." }]),
    );
    const bytes = (id: number) => service.tokenizer.tokenBytes(id);
    const settings: [string, SamplingOptions][] = [
      ["", { temperature: 1, topP: 0.95 }],
      ["_greedy", { temperature: 0 }],
    ];
    for (const [suffix, sampling] of settings) {
      const rounds: { free: number; bound: number }[] = [];
      let masks = 0;
      let maskSeconds = 0;
      for (let r = 0; r < 5; r++) {
        const seeded = { ...sampling, seed: r };
        const free = await constrainedDecode(service, prompt, seeded);
        const grammar = new VocabGrammar(compileJsonSchema(schema), trie, service.tokenizer.eos);
        const constraint = new GrammarConstraint(grammar, bytes);
        const bound = await constrainedDecode(service, prompt, seeded, constraint);
        try {
          JSON.parse(bound.text);
        } catch (error) {
          throw new Error(`The constrained output does not parse (${error}): ${bound.text}`);
        }
        masks += constraint.stats.masks;
        maskSeconds += constraint.stats.seconds;
        rounds.push({ free: free.tps, bound: bound.tps });
      }
      const ratio = median(rounds.map((r) => r.bound / r.free));
      const free = median(rounds.map((r) => r.free));
      const bound = median(rounds.map((r) => r.bound));
      const maskMs = (maskSeconds * 1000) / masks;
      out[`constrained_ratio${suffix}`] = ratio;
      out[`unconstrained_tps${suffix}`] = free;
      out[`constrained_tps${suffix}`] = bound;
      out[`mask_ms_per_token${suffix}`] = maskMs;
      console.log(
        `SmolLM2-135M-shape Q4_0 ${suffix === "" ? "sampled" : "greedy"}: ${
          free.toFixed(1)
        } tokens/s free, ${bound.toFixed(1)} tokens/s under the 20-property schema: ratio ${
          ratio.toFixed(3)
        } (masks ${maskMs.toFixed(2)} ms per token)`,
      );
    }
    return out;
  } finally {
    kernels.close();
  }
}

const kernels = await loadKernels({ threads: 1 });
const results: Result[] = [];
const ratios: Record<string, number> = {};
try {
  await stories(kernels, results, ratios);
} finally {
  kernels.close();
}
const endToEnd = Deno.env.get("RILL_BENCH_110M") === "0" ? {} : await random110M();
const sampling = Deno.env.get("RILL_BENCH_SAMPLED") === "0" ? {} : await sampledRatio();
const structured = Deno.env.get("RILL_BENCH_CONSTRAINED") === "0" ? {} : await constrainedRatio();
const gemma = Deno.env.get("RILL_BENCH_GEMMA") === "0" ? {} : await gemma3();
console.log(
  JSON.stringify({
    bench: "decode",
    steps: STEPS,
    results,
    ratios,
    ...endToEnd,
    ...sampling,
    ...structured,
    ...gemma,
  }),
);
