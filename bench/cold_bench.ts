/**
 * `deno task bench:cold`: cold start of a model over a throttled network. A random-weight
 * Llama of the stories110M shape (dim 768, 12 layers, vocab 32000, untied classifier) is
 * converted with the converter (Q4_0 linears, f32 embedding: about 160 MB), served from a
 * loopback server paced at `RILL_BENCH_RATE` bytes/s (default 50 MB/s), and loaded in a
 * subprocess (so its resident memory is its own): lazily, straight into the kernels' memory,
 * the first forward pass starting at once.
 *
 * - `cold_ttft_ratio`: time from the start of the load to the first token, over the time the
 *   archive takes to cross the throttle (archive bytes / rate). 1.0 means compute hidden
 *   entirely under the download.
 * - `peak_rss_ratio`: the subprocess's peak resident memory (VmHWM) after loading and
 *   generating, over the archive's weight bytes (`.dat` members); `peak_rss_over_baseline_ratio`
 *   subtracts what the process held before loading (runtime, compiled code);
 *   `peak_rss_floor_ratio` is (that baseline + weights + KV cache) / weights, the least a
 *   process that holds nothing else could reach, next to `peak_rss_goal_ratio` (1.25 + KV).
 * - `fixed_overhead_bytes`: the peak beyond the WASM memory's resident pages (the runtime,
 *   compiled code, the kernels' worker, the JS heap, network buffers), which does not grow with
 *   the model; `wasm_resident_over_weights_ratio` is the model's own share (1.0 when the
 *   weights are held once); `weights_at_goal_bytes` is the weight size from which that fixed
 *   overhead fits within the goal.
 *
 * The same shape with every tensor f32 (about 537 MB) is measured next, under `f32` in the
 * JSON (`RILL_BENCH_WEIGHTS=q40` or `f32` measures one only): the fixed overhead is the same,
 * a smaller share of a larger model. The converted archives are kept in `$RILL_BENCH_DIR`
 * (default: the system temp folder) and reused by the next run. Ends with one JSON line.
 */
import { openArchive } from "../src/nnef/archive.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { writeRandom110MArchive } from "./_random_llama.ts";

const RATE = Number(Deno.env.get("RILL_BENCH_RATE") ?? 50e6);
const WEIGHTS = Deno.env.get("RILL_BENCH_WEIGHTS");
const PROMPT = [1, 2, 3, 4];
const DECODE_STEPS = 16;

/** Resident and peak resident bytes of this process (Linux), else the runtime's rss twice. */
function memory(): { rss: number; hwm: number } {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kb = (key: string): number =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
  } catch {
    const rss = Deno.memoryUsage().rss;
    return { rss, hwm: rss };
  }
}

/**
 * Resident bytes of the mapping of exactly `bytes` (Linux: the WASM memory, whose untouched
 * pages, such as an unused part of the activation arena, are reserved but not resident).
 */
function residentOfMapping(bytes: number): number | null {
  try {
    const smaps = Deno.readTextFileSync("/proc/self/smaps");
    const sizeKb = bytes / 1024;
    const at = [
      ...smaps.matchAll(
        /^Size:\s+(\d+) kB\nKernelPageSize:[^\n]*\nMMUPageSize:[^\n]*\nRss:\s+(\d+) kB/gm,
      ),
    ]
      .filter((m) => Number(m[1]) === sizeKb);
    return at.length === 1 ? Number(at[0]![2]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The measured load, in its own process: prints one JSON line. */
async function child(url: string): Promise<void> {
  const { loadModel } = await import("../src/graph/load_model.ts");
  const { createSession } = await import("../src/engine/session.ts");
  const { sharedKernels } = await import("../src/engine/shared_kernels.ts");
  const { argmax } = await import("../src/engine/sampler.ts");
  const { closeSharedKernels } = await import("../src/engine/shared_kernels.ts");
  const { openHttpSource } = await import("../src/storage/http_source.ts");
  const baseline = memory().rss;
  const t0 = performance.now();
  const kernels = await sharedKernels();
  if (!kernels) throw new TypeError("The WASM kernels cannot load here");
  const kernelsRss = memory().rss;
  const source = await openHttpSource(url, { probeBytes: 16 << 10 });
  const model = await loadModel(source, { kernels, lazy: true });
  const graphMs = performance.now() - t0;
  const graphRss = memory().rss;
  const graphBytes = model.loadStats!.bytes;
  const session = await createSession(model);
  const logits = await session.prefillAsync(PROMPT);
  let token = argmax(logits);
  const ttftMs = performance.now() - t0;
  const firstTokenRss = memory();
  await model.weightsReady;
  const readyRss = memory();
  const weightsMs = model.loadStats!.weightsMs;
  const t1 = performance.now();
  for (let i = 0; i < DECODE_STEPS; i++) token = argmax(session.decode(token));
  const decodeTps = (DECODE_STEPS / (performance.now() - t1)) * 1000;
  // KV cache: one buffer per cache input, in the kernels' memory.
  const kvBytes = session.pairs.reduce((sum, p) => {
    const shape = model.input(p.input)!.fact.shape;
    const items = shape.reduce<number>(
      (n, d, i) => n * (i === p.axis ? 64 : typeof d === "number" ? d : 1),
      1,
    );
    return sum + items * 4;
  }, 0);
  const { hwm } = memory();
  const wasmBytes = kernels.memory.buffer.byteLength;
  const wasmResident = residentOfMapping(wasmBytes);
  const weightBytesInKernels = kernels.weightBytes;
  const usage = Deno.memoryUsage();
  await closeSharedKernels();
  await source.close();
  console.log(JSON.stringify({
    bytesFetched: source.bytesFetched,
    wasmBytes,
    wasmResident,
    kernelsRss,
    graphRss,
    graphBytes,
    firstTokenRss: firstTokenRss.rss,
    readyRss: readyRss.rss,
    weightBytesInKernels,
    heapUsed: usage.heapUsed,
    external: usage.external,
    ttftMs,
    graphMs,
    weightsMs,
    decodeTps,
    baseline,
    hwm,
    kvBytes,
    bytesPlaced: model.loadStats!.bytes,
  }));
}

async function archivePath(q40: boolean): Promise<string> {
  const dir = Deno.env.get("RILL_BENCH_DIR") ?? Deno.env.get("TMPDIR") ?? "/tmp";
  const path = `${dir}/rill_cold_110m_${q40 ? "q40" : "f32"}.nnef.tar`;
  try {
    await Deno.stat(path);
    return path;
  } catch {
    // Not made yet.
  }
  const seconds = await writeRandom110MArchive(path, q40);
  console.log(`converted the 110M-shape ${q40 ? "Q4_0" : "f32"} model in ${seconds.toFixed(1)} s`);
  return path;
}

/** Loads the converted archive cold in a child process; the figures, and one line of them. */
async function measure(q40: boolean): Promise<Record<string, unknown>> {
  const path = await archivePath(q40);
  const archive = await openArchive(path);
  const weightBytes = archive.members()
    .filter((m) => m.name.endsWith(".dat"))
    .reduce((n, m) => n + m.size, 0);
  await archive.close();
  const bytes = await Deno.readFile(path);
  const server = startTestServer({ "/m.nnef.tar": bytes }, {
    bytesPerSecond: RATE,
    etag: '"cold"',
  });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--child", `${server.url}/m.nnef.tar`],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success) throw new Error(`The measured load failed: ${text}`);
    const r = JSON.parse(text.split("\n").at(-1)!);
    const wireMs = (bytes.length / RATE) * 1000;
    const result = {
      archive_bytes: bytes.length,
      weight_bytes: weightBytes,
      rate_bytes_per_s: RATE,
      wire_ms: Math.round(wireMs),
      graph_ms: Math.round(r.graphMs),
      ttft_ms: Math.round(r.ttftMs),
      weights_ms: Math.round(r.weightsMs),
      decode_tps: Number(r.decodeTps.toFixed(2)),
      peak_rss_bytes: r.hwm,
      baseline_rss_bytes: r.baseline,
      kv_cache_bytes: r.kvBytes,
      rss_after_kernels_bytes: r.kernelsRss,
      rss_at_graph_built_bytes: r.graphRss,
      wasm_memory_bytes: r.wasmBytes,
      wasm_weight_region_bytes: r.weightBytesInKernels,
      // Null where /proc/self/smaps cannot tell (not Linux, or no single mapping of that size).
      wasm_resident_bytes: r.wasmResident,
      js_heap_used_bytes: r.heapUsed,
      js_external_bytes: r.external,
      requests: server.requests.length,
      bytes_fetched: r.bytesFetched,
      cold_ttft_ratio: Number((r.ttftMs / wireMs).toFixed(3)),
      peak_rss_ratio: Number((r.hwm / weightBytes).toFixed(3)),
      peak_rss_over_baseline_ratio: Number(((r.hwm - r.baseline) / weightBytes).toFixed(3)),
      peak_rss_over_kernels_loaded_ratio: Number(
        ((r.hwm - r.kernelsRss) / weightBytes).toFixed(3),
      ),
      kv_cache_ratio: Number((r.kvBytes / weightBytes).toFixed(3)),
      // The goal (1.25 plus the KV cache) against the least this process could reach: what it
      // held before loading, plus the weights and the KV cache, and nothing else.
      peak_rss_goal_ratio: Number((1.25 + r.kvBytes / weightBytes).toFixed(3)),
      peak_rss_floor_ratio: Number(
        ((r.baseline + weightBytes + r.kvBytes) / weightBytes).toFixed(3),
      ),
      fixed_overhead_bytes: r.wasmResident === null ? null : r.hwm - r.wasmResident,
      wasm_resident_over_weights_ratio: r.wasmResident === null
        ? null
        : Number((r.wasmResident / weightBytes).toFixed(3)),
      weights_at_goal_bytes: r.wasmResident === null
        ? null
        : Math.round((r.hwm - r.wasmResident) / (0.25 + r.kvBytes / weightBytes)),
      // Peak resident bytes beyond the pre-load baseline and the whole WASM memory.
      peak_rss_beyond_baseline_and_wasm_bytes: r.hwm - r.baseline - r.wasmBytes,
      // The same beyond the WASM memory's resident pages only (the arena's untouched pages
      // are reserved, not resident).
      peak_rss_beyond_baseline_and_resident_wasm_bytes: r.wasmResident === null
        ? null
        : r.hwm - r.baseline - r.wasmResident,
    };
    console.log(
      `${q40 ? "Q4_0" : "f32"}: ${(bytes.length / 1e6).toFixed(1)} MB at ${
        (RATE / 1e6).toFixed(0)
      } MB/s ` +
        `(${(wireMs / 1000).toFixed(2)} s on the wire): first token after ` +
        `${(r.ttftMs / 1000).toFixed(2)} s (graph built at ${r.graphMs.toFixed(0)} ms, ` +
        `weights in at ${(r.weightsMs / 1000).toFixed(2)} s), peak RSS ` +
        `${(r.hwm / 1e6).toFixed(0)} MB for ${(weightBytes / 1e6).toFixed(0)} MB of weights ` +
        `(${(r.baseline / 1e6).toFixed(0)} MB before loading), ${server.requests.length} requests`,
    );
    return result;
  } finally {
    await server.close();
  }
}

async function main(): Promise<void> {
  if (WEIGHTS !== undefined && WEIGHTS !== "q40" && WEIGHTS !== "f32") {
    throw new TypeError(`RILL_BENCH_WEIGHTS must be q40 or f32: received '${WEIGHTS}'`);
  }
  const q40 = WEIGHTS === "f32" ? undefined : await measure(true);
  const f32 = WEIGHTS === "q40" ? undefined : await measure(false);
  console.log(JSON.stringify(q40 === undefined ? f32 : f32 === undefined ? q40 : { ...q40, f32 }));
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--child");
  if (at >= 0) await child(Deno.args[at + 1]!);
  else await main();
}
