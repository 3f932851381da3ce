/**
 * `deno task bench:race`: Rill against the engines a JavaScript user would pick instead, on the
 * same Q4_0 weights, in one run:
 *
 * - `native`: llama.cpp through node-llama-cpp and its prebuilt CPU binary, in a Node subprocess;
 * - `wllama`: llama.cpp compiled to WebAssembly (`@wllama/wllama`), in a Deno subprocess;
 * - `rill`: this process, loaded and run as `rill serve` runs a model: `loadKernels` with the
 *   thread count, `loadService` on the archive with the server's turns of the event loop (a
 *   `LoopbackYield`, about 40 us a turn; the library's default digest turn takes about 200),
 *   `InferenceService.generate`.
 *
 * Both peers are installed at bench time with npm into `$RILL_RACE_DIR/peers` (default
 * `bench/tmp/race`, ignored by git). The models are random-weight Llamas of the stories110M and
 * TinyLlama 1.1B shapes written as GGUF with every matrix in Q4_0, converted by
 * `deno task convert` for Rill, and kept in `$RILL_RACE_DIR/models-v<generator version>`.
 *
 * Each engine generates greedily from the same 128-token prompt: prefill is the time from
 * handing the prompt to an empty sequence to having the first token; decode is the time from
 * there to the 65th token (64 single-token steps, each followed by greedy sampling). End of
 * sequence is suppressed in every engine. Times are taken inside each engine's process around
 * its public generation API (wllama: its streamed chunks). For each model and thread count the
 * three engines are loaded, warmed up by `WARM_UP_ROUNDS` untimed rounds of the same work, then
 * run in turn for `RILL_RACE_ROUNDS` rounds (default 3, the first engine rotating); the medians
 * are compared. A peer's process is stopped (SIGSTOP) whenever it is not answering a request, so
 * that its idle threads take no core from the engine being timed. To show that the engines
 * compute the same model, Rill's and wllama's logits after the prompt are compared with
 * llama.cpp's (on each model, once), and so are the tokens each generated in the last round.
 *
 * At one thread, two ceilings are measured in the same process with Rill's kernels, so that a
 * ratio can be set beside what WebAssembly allows here: decode can be no faster than a loop
 * that only reads the Q4_0 bytes a token's matrices hold (every layer's linears and the
 * classifier, read in place from the model's weights), and prefill no faster than i8 dot
 * products alone (`Kernels.dotPeak`, in L1) over the multiply-adds of those matrices.
 *
 * Prints a table, then one JSON line: `pp_ratio_<peer>_<model>_<n>t` (Rill's prefill tokens/s
 * over the peer's) and `tg_ratio_...` (decode), peers `native` and `wllama`; null where a peer
 * could not run (the reason is printed and under `unavailable`); the ceilings in tokens/s
 * (`ceilings`) and over native's tokens/s (`tg_ceiling_ratio_native_<model>_1t`, `pp_...`).
 *
 * Environment: `RILL_RACE_MODELS` (default `110m,1b`; `qwen3` adds Qwen3 0.6B's shape, its q and
 * k heads normed, with the Llama 2 vocabulary), `RILL_RACE_THREADS` (`1,2`),
 * `RILL_RACE_ROUNDS` (3), `RILL_RACE_PEERS` (`native,wllama`), `RILL_RACE_DIR`.
 */
import { type Kernels, loadKernels } from "../kernels/mod.ts";
import { dotPeakGmacs } from "./_dot_peak.ts";
import { loadService } from "../src/engine/load_service.ts";
import { LoopbackYield } from "../src/scheduler/io_turn.ts";
import { createSession } from "../src/engine/session.ts";
import type { InferenceService } from "../src/engine/service.ts";
import { loadModel } from "../src/graph/load_model.ts";
import { installPeers, Peer, PEER_PACKAGES, toolVersion } from "./_race_peers.ts";
import { LLAMA_SHAPES, type LlamaShape, raceModel, RANDOM_GGUF_VERSION } from "./_random_gguf.ts";
import { median } from "./_median.ts";

const PROMPT_TOKENS = 128;
const DECODE_TOKENS = 64;
const ROUNDS = Number(Deno.env.get("RILL_RACE_ROUNDS") ?? 3);
/**
 * Untimed rounds before them. The WebAssembly engines reach their steady speed only after a
 * couple of full generations (V8 tiering their code up, Rill's step tapes and thread policy):
 * after a 16-token warm-up, Rill's first two rounds of the 110M shape at two threads decoded at
 * 208 and 231 tokens/s and the next two at 271 and 277, so that the median took a cold round.
 */
const WARM_UP_ROUNDS = 2;
/** How many of llama.cpp's most likely next tokens the logits check compares. */
const TOP = 40;

type EngineName = "rill" | "native" | "wllama";
type PeerName = Exclude<EngineName, "rill">;

/** The prompt as ids (BOS first) and as the text that encodes to them. */
interface Prompt {
  readonly ids: readonly number[];
  readonly text: string;
}

/** One greedy generation: its two phases' times, and what it generated. */
interface Timing {
  readonly prefillMs: number;
  readonly decodeMs: number;
  readonly ids?: readonly number[];
  readonly text?: string;
}

interface Engine {
  readonly name: EngineName;
  /** Prefill of `prompt`, then `decode` steps (see the module doc). */
  run(prompt: Prompt, decode: number): Promise<Timing>;
  close(): Promise<void>;
}

function envList(name: string, fallback: string): string[] {
  return (Deno.env.get(name) ?? fallback).split(",").map((s) => s.trim()).filter((s) => s);
}

function log(line: string): void {
  console.log(line);
}

/** Rill as `rill serve` runs it, with its own kernels at `threads` threads. */
async function openRill(
  archive: string,
  threads: number,
): Promise<Engine & { service: InferenceService; kernels: Kernels }> {
  const kernels = await loadKernels({ threads });
  const turns = await LoopbackYield.open();
  const close = () => {
    turns?.close();
    kernels.close();
  };
  try {
    const { service, weightsReady } = await loadService(archive, {
      modelId: "race",
      kernels,
      // The whole prompt in one prefill step, as llama.cpp takes it in one batch.
      prefillChunk: PROMPT_TOKENS,
      // Every round prefills the same prompt: computed each time, not recalled.
      prefixCache: false,
      ...(turns ? { ioYield: turns.yield } : {}),
    });
    await weightsReady;
    return {
      name: "rill",
      service,
      kernels,
      run: (prompt, decode) => generate(service, prompt.ids, decode),
      close: () => Promise.resolve(close()),
    };
  } catch (e) {
    close();
    throw e;
  }
}

async function generate(
  service: InferenceService,
  prompt: readonly number[],
  decode: number,
): Promise<Timing> {
  const logitBias = new Map(service.tokenizer.eos.map((id) => [id, -Infinity]));
  let ids: readonly number[] = [];
  const t0 = performance.now();
  let t1 = t0;
  for await (
    const event of service.generate(prompt, {
      sampling: { temperature: 0, logitBias },
      stop: [],
      maxTokens: decode + 1,
      onFirstToken: () => t1 = performance.now(),
    })
  ) {
    if (event.type === "done") ids = event.ids;
  }
  return { prefillMs: t1 - t0, decodeMs: performance.now() - t1, ids };
}

async function openPeer(
  name: PeerName,
  modules: string,
  gguf: string,
  threads: number,
): Promise<Engine & { peer: Peer }> {
  const bench = new URL(".", import.meta.url).pathname;
  const peer = name === "native"
    ? await Peer.start("native llama.cpp (node-llama-cpp)", "node", [
      `${bench}_race_native_peer.mjs`,
      modules,
      gguf,
      String(threads),
    ])
    : await Peer.start("wllama", Deno.execPath(), [
      "run",
      "-A",
      "--location",
      "http://localhost/",
      `${bench}_race_wllama_peer.ts`,
      modules,
      gguf,
      String(threads),
    ]);
  return {
    name,
    peer,
    run: async (prompt, decode) => {
      const args = { prompt: name === "native" ? prompt.ids : prompt.text, decode };
      const t = await peer.request<Timing & { promptTokens?: number; completionTokens?: number }>(
        "run",
        args,
      );
      if (t.promptTokens !== undefined && t.promptTokens !== prompt.ids.length) {
        throw new Error(
          `wllama read the prompt as ${t.promptTokens} tokens, the other engines ${prompt.ids.length}`,
        );
      }
      if (t.completionTokens !== undefined && t.completionTokens !== decode + 1) {
        throw new Error(`wllama generated ${t.completionTokens} tokens, not ${decode + 1}`);
      }
      return t;
    },
    close: () => peer.close(),
  };
}

/**
 * A prompt of `tokens` ids: BOS and common English words that each encode to one token (drawn
 * with a fixed seed: a shorter prompt is the start of a longer one), so that wllama, which takes
 * text only, reads the same ids.
 */
function makePrompt(service: InferenceService, tokens: number): Prompt {
  const words = (
    "the a one day there was little girl boy named lily tom who loved to play in park with " +
    "her his big red ball sun shining birds singing she he saw dog cat tree water happy sad " +
    "friend mom dad house garden flower blue green small run jump look said went home time " +
    "good new old long cold warm fast slow"
  ).split(" ").filter((w) => service.encodePrompt(w).length === 2);
  let seed = 7;
  const chosen: string[] = [];
  while (chosen.length < tokens - 1) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    chosen.push(words[seed % words.length]!);
  }
  const text = chosen.join(" ");
  const ids = service.encodePrompt(text);
  if (ids.length !== tokens) {
    throw new Error(`The prompt encodes to ${ids.length} tokens, not ${tokens}`);
  }
  return { ids, text };
}

interface Probe {
  /** The likeliest next tokens, most likely first. */
  readonly ids: readonly number[];
  /** Their logits minus the first one's. */
  readonly logits: readonly number[];
}

/**
 * How another engine's top tokens `theirs` match llama.cpp's `ref`, in one phrase; their logits
 * are compared over the tokens `values` gives (relative to `ref`'s top token there).
 */
function describeProbe(ref: Probe, theirs: Probe, values: Probe = theirs): string {
  let worst = 0;
  values.ids.forEach((id, i) => {
    const at = ref.ids.indexOf(id);
    if (at >= 0) worst = Math.max(worst, Math.abs(ref.logits[at]! - values.logits[i]!));
  });
  const n = Math.min(10, theirs.ids.length);
  const shared = theirs.ids.slice(0, n).filter((id) => ref.ids.slice(0, n).includes(id)).length;
  const top = theirs.ids[0] === ref.ids[0]
    ? "agrees"
    : `differs (${theirs.ids[0]} vs ${ref.ids[0]})`;
  return `top token ${top}, ${shared}/${n} of the top ${n} shared, logits relative to the ` +
    `top differ by at most ${worst.toFixed(4)} over ${values.ids.length} tokens`;
}

/**
 * Rill's and wllama's logits after `prompt` next to llama.cpp's, over llama.cpp's `TOP`
 * likeliest tokens (wllama reports its top 10).
 */
async function compareLogits(
  archive: string,
  native: Peer,
  wllama: Peer | undefined,
  prompt: Prompt,
): Promise<void> {
  const ref = await native.request<Probe>("probe", { prompt: prompt.ids, top: TOP });
  log(
    `  logits after the prompt: llama.cpp's top two are ${
      (-ref.logits[1]!).toFixed(3)
    } apart, its top ${TOP} within ${(-ref.logits.at(-1)!).toFixed(3)}`,
  );
  const kernels = await loadKernels({ threads: 1 });
  try {
    const model = await loadModel(archive, { kernels });
    const session = await createSession(model, { kernels });
    const logits = session.prefill(prompt.ids); // (vocab,)
    const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!).slice(0, TOP);
    const ours = { ids: order, logits: order.map((id) => logits[id]! - logits[order[0]!]!) };
    const atRef = { ids: ref.ids, logits: ref.ids.map((id) => logits[id]! - logits[ref.ids[0]!]!) };
    log(`    Rill vs llama.cpp: ${describeProbe(ref, ours, atRef)}`);
  } finally {
    kernels.close();
  }
  if (wllama !== undefined) {
    const theirs = await wllama.request<Probe>("probe", { prompt: prompt.text, top: 10 });
    log(`    wllama vs llama.cpp: ${describeProbe(ref, theirs)}`);
  }
}

/** Steps until two greedy generations part (their length when they never do). */
function agreeingSteps(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** Tokens per second of each engine and phase over the rounds of one model and thread count. */
interface Case {
  readonly shape: LlamaShape;
  readonly threads: number;
  readonly pp: Partial<Record<EngineName, number[]>>;
  readonly tg: Partial<Record<EngineName, number[]>>;
  /** At one thread: the most tokens/s WebAssembly allows here (see the module doc). */
  ceilings?: { readonly pp: number; readonly tg: number };
}

/** Multiply-adds per token of the matrices a step reads whole: the layers' linears, the classifier. */
function matrixMacs(s: LlamaShape): number {
  const hd = s.headDim ?? s.dim / s.heads;
  const layer = 2 * s.dim * s.heads * hd + 2 * s.dim * s.kvHeads * hd + 3 * s.dim * s.hidden;
  return s.layers * layer + s.vocab * s.dim;
}

/** Median milliseconds of `fn` over `runs` runs, after one untimed. */
function medianMs(runs: number, fn: () => void): number {
  fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

/**
 * The one-thread ceilings of `shape` on `kernels`, which hold its weights, logged: a read of
 * its matrices' Q4_0 bytes in place, and i8 dot products over their multiply-adds.
 */
function measureCeilings(kernels: Kernels, shape: LlamaShape): { pp: number; tg: number } {
  const macs = matrixMacs(shape);
  const bytes = Math.floor(macs / 32 * 18 / 64) * 64;
  if (bytes > kernels.weightBytes) {
    throw new RangeError(
      `The ${shape.name} weights hold ${kernels.weightBytes} bytes, not ${bytes}`,
    );
  }
  const readMs = medianMs(5, () => kernels.readSum(kernels.weightsOffset, bytes));
  const dotGmacs = dotPeakGmacs(kernels, 4096, (call) => medianMs(5, call));
  const ceilings = { tg: 1000 / readMs, pp: dotGmacs * 1e9 / macs };
  log(
    `  ceilings at one thread (Rill's kernels, this process): reading the ${
      (bytes / 2 ** 20).toFixed(0)
    } MiB of Q4_0 matrices a token needs, and nothing else, takes ${readMs.toFixed(1)} ms (${
      (bytes / readMs / 1e6).toFixed(2)
    } GB/s): decode at most ${ceilings.tg.toFixed(1)} tokens/s; i8 dot products alone, ${
      dotGmacs.toFixed(1)
    } GMAC/s over ${(macs / 1e6).toFixed(0)}M multiply-adds a token: prefill at most ${
      ceilings.pp.toFixed(1)
    } tokens/s`,
  );
  return ceilings;
}

/** Characters two texts share from their start. */
function sharedPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** The peers that start (their details logged); the others are marked unavailable. */
async function openPeers(
  peers: ReadonlyMap<PeerName, string>,
  gguf: string,
  threads: number,
  unavailable: Map<PeerName, string>,
): Promise<(Engine & { peer: Peer })[]> {
  const opened = [];
  for (const [name, modules] of peers) {
    if (unavailable.has(name)) continue;
    try {
      const engine = await openPeer(name, modules, gguf, threads);
      opened.push(engine);
      log(`  ${engine.peer.label}: ${JSON.stringify(await engine.peer.request("info"))}`);
    } catch (e) {
      unavailable.set(name, (e as Error).message);
      log(`  ${name} cannot run here: ${(e as Error).message}`);
    }
  }
  return opened;
}

/**
 * `WARM_UP_ROUNDS` untimed rounds, then `ROUNDS` rounds of every engine in turn (the first one
 * rotating); a peer that fails leaves the race with its reason. Returns the last run of each
 * engine.
 */
async function runRounds(
  engines: Engine[],
  prompt: Prompt,
  result: Case,
  unavailable: Map<PeerName, string>,
): Promise<Map<EngineName, Timing>> {
  const last = new Map<EngineName, Timing>();
  const attempt = async (e: Engine) => {
    try {
      return await e.run(prompt, DECODE_TOKENS);
    } catch (error) {
      if (e.name === "rill") throw error;
      unavailable.set(e.name, (error as Error).message);
      log(`  ${e.name} failed and leaves the race: ${(error as Error).message}`);
      engines.splice(engines.indexOf(e), 1);
      return undefined;
    }
  };
  for (let r = 0; r < WARM_UP_ROUNDS; r++) {
    for (const e of [...engines]) await attempt(e);
  }
  for (let r = 0; r < ROUNDS; r++) {
    const k = r % engines.length;
    const line: string[] = [];
    for (const e of [...engines.slice(k), ...engines.slice(0, k)]) {
      const t = await attempt(e);
      if (t === undefined) continue;
      const [pp, tg] = [PROMPT_TOKENS / t.prefillMs * 1000, DECODE_TOKENS / t.decodeMs * 1000];
      (result.pp[e.name] ??= []).push(pp);
      (result.tg[e.name] ??= []).push(tg);
      last.set(e.name, t);
      line.push(`${e.name} ${pp.toFixed(1)}/${tg.toFixed(1)}`);
    }
    log(`  round ${r + 1}, prefill/decode tokens/s: ${line.join(", ")}`);
  }
  return last;
}

/** Whether the engines generated the same tokens as llama.cpp, logged. */
async function compareGenerations(
  native: Peer,
  prompt: Prompt,
  last: ReadonlyMap<EngineName, Timing>,
) {
  const theirs = last.get("native");
  const ours = last.get("rill")!;
  if (theirs === undefined) return;
  const steps = agreeingSteps(ours.ids!, theirs.ids!);
  log(`  greedy tokens: Rill and llama.cpp agree on the first ${steps} of ${ours.ids!.length}`);
  const wllama = last.get("wllama");
  if (wllama === undefined) return;
  const text = await native.request<string>("detokenize", { ids: theirs.ids, after: prompt.ids });
  log(
    `  greedy text: wllama and llama.cpp agree on the first ${
      sharedPrefix(wllama.text!, text)
    } of ${text.length} characters`,
  );
}

async function raceCase(
  shape: LlamaShape,
  threads: number,
  files: { gguf: string; archive: string },
  peers: ReadonlyMap<PeerName, string>,
  unavailable: Map<PeerName, string>,
  checkLogits: boolean,
): Promise<Case> {
  const opened: Engine[] = [];
  const result: Case = { shape, threads, pp: {}, tg: {} };
  try {
    const rill = await openRill(files.archive, threads);
    opened.push(rill);
    const prompt = makePrompt(rill.service, PROMPT_TOKENS);
    const others = await openPeers(peers, files.gguf, threads, unavailable);
    opened.push(...others);
    const native = others.find((e) => e.name === "native")?.peer;
    if (native !== undefined) {
      const theirs = await native.request<number[]>("tokenize", { text: prompt.text });
      if (theirs.join() !== prompt.ids.slice(1).join()) {
        throw new Error("llama.cpp and Rill encode the prompt differently");
      }
      if (checkLogits) {
        const wllama = others.find((e) => e.name === "wllama")?.peer;
        await compareLogits(files.archive, native, wllama, prompt);
      }
    }
    const last = await runRounds([...opened], prompt, result, unavailable);
    if (native !== undefined) await compareGenerations(native, prompt, last);
    if (threads === 1) result.ceilings = measureCeilings(rill.kernels, shape);
    return result;
  } finally {
    for (const e of opened) await e.close();
  }
}

/** What keeps a peer from running here, if anything. */
async function peerObstacle(name: PeerName): Promise<string | undefined> {
  if (name === "native") {
    if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
      return `the bench installs node-llama-cpp's Linux x64 binary; this is ${Deno.build.os} ${Deno.build.arch}`;
    }
    const node = await toolVersion("node");
    if (!node.ok) return `Node is needed to run node-llama-cpp: ${node.text}`;
  }
  return undefined;
}

function ratio(ours: number[] | undefined, theirs: number[] | undefined): number | null {
  if (ours === undefined || theirs === undefined) return null;
  return Number((median(ours) / median(theirs)).toFixed(3));
}

/** Each engine's median tokens/s of one case, on one line (printed as soon as it is measured). */
function summary(c: Case): string {
  const engines = Object.keys(c.pp) as EngineName[];
  const phase = (v: Case["pp"]) =>
    engines.map((e) => `${e} ${median(v[e]!).toFixed(1)}`).join(", ");
  return `medians in tokens/s: prefill ${phase(c.pp)}; decode ${phase(c.tg)}`;
}

function printTable(cases: readonly Case[]): void {
  const cell = (v: number[] | undefined) =>
    (v === undefined ? "-" : median(v).toFixed(1)).padStart(9);
  const r = (v: number | null) => (v === null ? "-" : v.toFixed(2)).padStart(12);
  console.log(
    `\n${"model".padEnd(6)} ${"thr".padStart(3)} ${"metric".padEnd(16)} ${"native".padStart(9)} ${
      "wllama".padStart(9)
    } ${"rill".padStart(9)} ${"rill/native".padStart(12)} ${"rill/wllama".padStart(12)}`,
  );
  for (const c of cases) {
    for (const [metric, v] of [["prefill tok/s", c.pp], ["decode tok/s", c.tg]] as const) {
      console.log(
        `${c.shape.name.padEnd(6)} ${String(c.threads).padStart(3)} ${metric.padEnd(16)} ${
          cell(v.native)
        } ${cell(v.wllama)} ${cell(v.rill)} ${r(ratio(v.rill, v.native))} ${
          r(ratio(v.rill, v.wllama))
        }`,
      );
    }
  }
  console.log();
}

async function main(): Promise<void> {
  const dir = Deno.env.get("RILL_RACE_DIR") ??
    new URL("./tmp/race", import.meta.url).pathname;
  const shapes = envList("RILL_RACE_MODELS", "110m,1b").map((name) => {
    const shape = LLAMA_SHAPES[name as keyof typeof LLAMA_SHAPES];
    if (shape === undefined) throw new RangeError(`Unknown model '${name}' in RILL_RACE_MODELS`);
    return shape;
  });
  const threadCounts = envList("RILL_RACE_THREADS", "1,2").map(Number);
  const peerNames = envList("RILL_RACE_PEERS", "native,wllama") as PeerName[];
  log(
    `bench:race: ${PROMPT_TOKENS}-token prompt, ${DECODE_TOKENS} decode steps, greedy; ` +
      `${ROUNDS} rounds; cache in ${dir}`,
  );
  const unavailable = new Map<PeerName, string>();
  for (const name of ["native", "wllama"] as const) {
    if (!peerNames.includes(name)) unavailable.set(name, "left out by RILL_RACE_PEERS");
  }
  const peers = new Map<PeerName, string>();
  for (const name of peerNames) {
    const obstacle = await peerObstacle(name);
    if (obstacle !== undefined) unavailable.set(name, obstacle);
  }
  if (peerNames.some((n) => !unavailable.has(n))) {
    try {
      const modules = await installPeers(dir, log);
      log(`peers: ${PEER_PACKAGES.join(", ")} in ${modules}`);
      for (const name of peerNames) peers.set(name, modules);
    } catch (e) {
      for (const name of peerNames) unavailable.set(name, (e as Error).message);
    }
  }
  for (const [name, reason] of unavailable) log(`${name} is not raced: ${reason}`);
  const cases: Case[] = [];
  for (const shape of shapes) {
    const files = await raceModel(dir, shape, log);
    for (const [i, threads] of threadCounts.entries()) {
      log(`${shape.name}, ${threads} thread(s):`);
      const measured = await raceCase(shape, threads, files, peers, unavailable, i === 0);
      cases.push(measured);
      log(`  ${summary(measured)}`);
    }
  }
  printTable(cases);
  const ratios: Record<string, number | null> = {};
  const tokensPerSecond: Record<string, number> = {};
  for (const peer of ["native", "wllama"] as const) {
    for (const c of cases) {
      const key = `${peer}_${c.shape.name}_${c.threads}t`;
      ratios[`pp_ratio_${key}`] = ratio(c.pp.rill, c.pp[peer]);
      ratios[`tg_ratio_${key}`] = ratio(c.tg.rill, c.tg[peer]);
    }
  }
  const ceilings: Record<string, number> = {};
  for (const c of cases) {
    if (c.ceilings === undefined) continue;
    const key = `${c.shape.name}_${c.threads}t`;
    ceilings[`pp_${key}`] = Number(c.ceilings.pp.toFixed(2));
    ceilings[`tg_${key}`] = Number(c.ceilings.tg.toFixed(2));
    ratios[`pp_ceiling_ratio_native_${key}`] = ratio([c.ceilings.pp], c.pp.native);
    ratios[`tg_ceiling_ratio_native_${key}`] = ratio([c.ceilings.tg], c.tg.native);
  }
  for (const c of cases) {
    for (const [engine, v] of Object.entries(c.pp)) {
      tokensPerSecond[`pp_${engine}_${c.shape.name}_${c.threads}t`] = Number(median(v).toFixed(2));
    }
    for (const [engine, v] of Object.entries(c.tg)) {
      tokensPerSecond[`tg_${engine}_${c.shape.name}_${c.threads}t`] = Number(median(v).toFixed(2));
    }
  }
  console.log(JSON.stringify({
    bench: "race",
    ...ratios,
    tokens_per_second: tokensPerSecond,
    ceilings,
    prompt_tokens: PROMPT_TOKENS,
    decode_tokens: DECODE_TOKENS,
    rounds: ROUNDS,
    models_version: RANDOM_GGUF_VERSION,
    unavailable: Object.fromEntries(unavailable),
  }));
}

await main();
