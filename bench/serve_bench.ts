/**
 * `deno task bench:serve`: the real server (`rill serve` in a child process) with a random
 * 110M-shape Q4_0 model, driven over HTTP by the `openai` npm client as users drive it.
 *
 * - 1, 2, 4 and 8 concurrent streams, each a 128-token prompt and 128 generated tokens
 *   (greedy, end token banned so that every stream generates all of them): total decode
 *   tokens/s at each level (tokens after each stream's first, from the first token of the
 *   level to its last, the other streams' prompts included) over one stream's (`speedup_N`),
 *   the same while every stream decodes (from the last first token to the first last token:
 *   the batched decode steps alone, `steady_speedup_N`), every generated token over the
 *   level's wall time (`throughput_tps_N`), and time to first token per level;
 * - a prefix test: a 1,000-token prompt, then another sharing its first 1,000 tokens
 *   (`prefix_ttft_ratio`: time to first token with the cached prefix over the cold one);
 * - a burst: 8 requests at once sharing a fresh 1,000-token prefix, each with its own 8 tokens
 *   after it (`burst_ttft_ratio`: the last of their times to first token over the cold one
 *   above; computing the prefix once for all of them keeps it near 1);
 * - scoring, what lm-evaluation-harness sends (`echo` with `logprobs`, one token): fresh
 *   512-token prompts scored and answered plainly, in turn, 3 of each (`score_cost_ratio`:
 *   the median scored time over the median plain one);
 * - `/health` polled every 10 ms throughout (`health_p99_ms` while 8 streams run);
 * - the server's peak resident memory (`peak_rss_mb`, VmHWM), before the scoring, with the
 *   archive's weights (`weights_mb`), the KV pool (`kv_pool_mb`, the budget, from
 *   `/metrics`) and what is left beyond both (`rss_beyond_weights_and_kv_mb`, to set beside
 *   the fixed overhead `bench:cold` measures; negative while the pool is not all touched).
 *
 * Prints one line per measurement, then one JSON line. `RILL_BENCH_THREADS` sets the kernel
 * threads (default 2).
 */
import { CONVERTER_VERSION } from "../models/convert.ts";
import OpenAI from "openai";
import { writeRandom110MArchive } from "./_random_llama.ts";
import { openArchive } from "../src/nnef/archive.ts";

const PROMPT_TOKENS = 128;
const GENERATED = 128;
const PREFIX = 1000;
const SCORED = 512;
const LEVELS = [1, 2, 4, 8];
const THREADS = Number(Deno.env.get("RILL_BENCH_THREADS") ?? 2);
/** The llama2.c tokenizer's end token, banned so that every stream runs its full length. */
const EOS = 2;

const cacheDir = `${Deno.env.get("HOME") ?? "/tmp"}/.cache/rill/bench`;
// Made again whenever the converter writes other archives.
const archive = `${cacheDir}/random110m_q40_c${CONVERTER_VERSION}.nnef.tar`;

async function ensureModel(): Promise<void> {
  try {
    await Deno.stat(archive);
  } catch {
    await Deno.mkdir(cacheDir, { recursive: true });
    console.log("writing the random 110M-shape Q4_0 model (cached for later runs)...");
    const seconds = await writeRandom110MArchive(archive, true);
    console.log(`model ready in ${seconds.toFixed(1)} s`);
  }
}

interface ServerProcess {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

async function startServer(): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../cli/main.ts", import.meta.url).pathname,
      "serve",
      "--model",
      archive,
      "--model-id",
      "random110m",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--threads",
      String(THREADS),
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let url: string | null = null;
  while (url === null) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`rill serve exited before listening:\n${text}`);
    text += value;
    url = /listening on (http:\/\/\S+)/.exec(text)?.[1] ?? null;
  }
  // Keep draining stderr so the child never blocks on a full pipe.
  (async () => {
    while (!(await lines.read()).done) { /* drain */ }
  })().catch(() => {});
  for (;;) {
    const ready = await fetch(`${url}/ready`).then((r) => r.status, () => 0);
    if (ready === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** Peak resident memory of process `pid` in MiB (VmHWM). */
/** The archive's weight bytes (its `.dat` members), in MiB. */
async function weightMb(): Promise<number> {
  const opened = await openArchive(archive);
  try {
    const dat = opened.members().filter((m) => m.name.endsWith(".dat"));
    return dat.reduce((n, m) => n + m.size, 0) / 2 ** 20;
  } finally {
    await opened.close();
  }
}

async function peakRssMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** Polls `/health` every 10 ms until stopped; the latencies in ms. */
function pollHealth(url: string): { stop(): Promise<number[]> } {
  const times: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      await (await fetch(`${url}/health`)).body?.cancel();
      times.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return times;
    },
  };
}

function tokens(count: number, seed: number): number[] {
  return [
    1,
    ...Array.from({ length: count - 1 }, (_, i) => 3 + ((i * 7919 + seed * 104729) % 31000)),
  ];
}

interface StreamResult {
  readonly start: number;
  readonly first: number;
  readonly last: number;
  readonly count: number;
  /** When each text chunk arrived. */
  readonly times: readonly number[];
}

/** One streamed completion; timings in `performance.now()` ms. */
async function stream(client: OpenAI, prompt: number[], maxTokens: number): Promise<StreamResult> {
  const start = performance.now();
  const chunks = await client.completions.create({
    model: "random110m",
    prompt,
    max_tokens: maxTokens,
    temperature: 0,
    logit_bias: { [EOS]: -100 },
    stream: true,
  });
  let first = 0;
  let last = 0;
  let count = 0;
  const times: number[] = [];
  for await (const chunk of chunks) {
    if (!chunk.choices[0]?.text) continue;
    last = performance.now();
    if (first === 0) first = last;
    count++;
    times.push(last);
  }
  return { start, first, last, count, times };
}

/** Milliseconds of a one-token completion of `prompt`, its prompt scored when `scored`. */
async function completionMs(client: OpenAI, prompt: number[], scored: boolean): Promise<number> {
  const start = performance.now();
  const answer = await client.completions.create({
    model: "random110m",
    prompt,
    max_tokens: 1,
    temperature: 0,
    ...(scored ? { echo: true, logprobs: 1 } : {}),
  });
  const ms = performance.now() - start;
  const logged = answer.choices[0]?.logprobs?.token_logprobs?.length ?? 0;
  if (scored && logged !== prompt.length + 1) {
    throw new Error(`A scored prompt of ${prompt.length} tokens came back with ${logged} logprobs`);
  }
  return ms;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

await ensureModel();
const server = await startServer();
const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "none", maxRetries: 0 });
const out: Record<string, number> = { threads: THREADS };
try {
  // Warm-up: the JIT and the kernels' first calls. V8 is still optimizing the decode path
  // after one short answer: the first full-length stream decodes about a third slower.
  for (let i = 0; i < 3; i++) await stream(client, tokens(PROMPT_TOKENS, 990 + i), GENERATED);
  let single = 0;
  let singleSteady = 0;
  for (const level of LEVELS) {
    const health = pollHealth(server.url);
    const results = await Promise.all(
      Array.from(
        { length: level },
        (_, i) => stream(client, tokens(PROMPT_TOKENS, level * 10 + i), GENERATED),
      ),
    );
    const latencies = await health.stop();
    // Each stream's text chunks stand for its tokens (one chunk per token here).
    const decodeTokens = results.reduce((n, r) => n + r.count - 1, 0);
    const window = Math.max(...results.map((r) => r.last)) -
      Math.min(...results.map((r) => r.first));
    const tps = (decodeTokens / window) * 1000;
    if (level === 1) single = tps;
    const ttfts = results.map((r) => r.first - r.start);
    // Everything the level generated over its wall time, prefills included.
    const wall = Math.max(...results.map((r) => r.last)) - Math.min(...results.map((r) => r.start));
    out[`throughput_tps_${level}`] = (results.reduce((n, r) => n + r.count, 0) / wall) * 1000;
    out[`decode_tps_${level}`] = tps;
    out[`ttft_p50_ms_${level}`] = percentile(ttfts, 50);
    out[`ttft_p99_ms_${level}`] = percentile(ttfts, 99);
    out[`health_p99_ms_${level}`] = percentile(latencies, 99);
    if (level > 1) out[`speedup_${level}`] = tps / single;
    // While every stream decodes (all prompts in, none done): the batched steps alone.
    const from = Math.max(...results.map((r) => r.first));
    const to = Math.min(...results.map((r) => r.last));
    const steadyTokens = results.reduce(
      (n, r) => n + r.times.filter((t) => t > from && t <= to).length,
      0,
    );
    const steady = to > from ? (steadyTokens / (to - from)) * 1000 : NaN;
    if (level === 1) singleSteady = steady;
    out[`steady_tps_${level}`] = steady;
    if (level > 1) out[`steady_speedup_${level}`] = steady / singleSteady;
    console.log(
      `${level} stream(s): ${tps.toFixed(1)} decode tok/s total` +
        (level > 1 ? ` (${(tps / single).toFixed(2)}x one stream)` : "") +
        `, ${steady.toFixed(1)} while all decode` +
        (level > 1 ? ` (${(steady / singleSteady).toFixed(2)}x)` : "") +
        `, TTFT p50 ${percentile(ttfts, 50).toFixed(0)} ms p99 ${
          percentile(ttfts, 99).toFixed(0)
        } ms` +
        `, /health p99 ${percentile(latencies, 99).toFixed(1)} ms over ${latencies.length} polls`,
    );
  }
  out.health_p99_ms = out.health_p99_ms_8!;
  const prefix = tokens(PREFIX, 4242);
  const cold = await stream(client, [...prefix, ...tokens(8, 1).slice(1)], 4);
  const warm = await stream(client, [...prefix, ...tokens(8, 2).slice(1)], 4);
  const coldMs = cold.first - cold.start;
  const warmMs = warm.first - warm.start;
  out.prefix_cold_ttft_ms = coldMs;
  out.prefix_warm_ttft_ms = warmMs;
  out.prefix_ttft_ratio = warmMs / coldMs;
  console.log(
    `prefix of ${PREFIX} tokens: TTFT ${coldMs.toFixed(0)} ms cold, ${
      warmMs.toFixed(0)
    } ms cached ` +
      `(${(warmMs / coldMs).toFixed(3)})`,
  );
  const shared = tokens(PREFIX, 4343);
  const burst = await Promise.all(
    Array.from(
      { length: 8 },
      (_, i) => stream(client, [...shared, ...tokens(9, 20 + i).slice(1)], 4),
    ),
  );
  const burstMs = Math.max(...burst.map((r) => r.first - r.start));
  out.burst_ttft_max_ms = burstMs;
  out.burst_ttft_ratio = burstMs / coldMs;
  console.log(
    `8 requests at once sharing a fresh ${PREFIX}-token prefix: last TTFT ${
      burstMs.toFixed(0)
    } ms (${(burstMs / coldMs).toFixed(2)}x one cold request)`,
  );
  out.peak_rss_mb = await peakRssMb(server.pid);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  out.kv_pool_mb = Number(/^rill_kv_pool_bytes (\S+)$/m.exec(metrics)?.[1]) / 2 ** 20;
  out.weights_mb = await weightMb();
  out.rss_beyond_weights_and_kv_mb = out.peak_rss_mb - out.weights_mb - out.kv_pool_mb;
  console.log(
    `server peak RSS ${out.peak_rss_mb.toFixed(0)} MiB: weights ${out.weights_mb.toFixed(0)}, ` +
      `KV pool ${out.kv_pool_mb.toFixed(0)}, the rest ${
        out.rss_beyond_weights_and_kv_mb.toFixed(0)
      } (compare bench:cold's fixed_overhead_bytes)`,
  );
  // Last, so that the peak RSS above is that of the streams, prefix and burst alone: each fresh
  // prompt scored here adds its KV blocks to the prefix cache.
  const plain: number[] = [];
  const scored: number[] = [];
  for (let round = 0; round < 3; round++) {
    plain.push(await completionMs(client, tokens(SCORED, 5100 + round), false));
    scored.push(await completionMs(client, tokens(SCORED, 5200 + round), true));
  }
  out.score_plain_ms = percentile(plain, 50);
  out.score_ms = percentile(scored, 50);
  out.score_cost_ratio = out.score_ms / out.score_plain_ms;
  console.log(
    `a fresh ${SCORED}-token prompt: ${out.score_plain_ms.toFixed(0)} ms answered, ${
      out.score_ms.toFixed(0)
    } ms scored (${out.score_cost_ratio.toFixed(2)}x)`,
  );
} finally {
  await server.stop();
}
console.log(JSON.stringify({ bench: "serve", ...out }));
