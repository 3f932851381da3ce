/**
 * Kernel benchmarks: Q4_0 x Q8_0 matvec streamed over a weight set larger than the caches,
 * against a WASM memory-read baseline over the same bytes, the scalar twin and plain
 * simd128; 2-thread speed-up; one weight stream against several (`Kernels.q4Streams`); then,
 * with the settings `tuneQ4` chooses over the weight set (as a model's load would), batched
 * and prefill tokens/s over m = 1 against the ceiling a dot-product roofline sets; 128-token
 * prefill; a kernels-only 110M-shape decode step.
 * Prints readable lines, then one JSON line. Run: `deno task bench:kernels`.
 */

import process from "node:process";
import { f32ToF16 } from "../src/tensor/f16.ts";
import { type Kernels, loadKernels, type Q4Layout } from "../kernels/mod.ts";
import { median } from "./_median.ts";
import { dotPeakGmacs } from "./_dot_peak.ts";
import { tileSpeedups, tuneQ4 } from "../kernels/q4_tuning.ts";

const WARM_MS = 250;
const WINDOW_MS = 150;
const WINDOWS = 3;
/** Weight set streamed by the matvec benchmarks: larger than the last-level cache. */
const POOL_BYTES = 384 * 1024 * 1024;
const SHAPES: [number, number][] = [[4096, 4096], [2048, 5632], [5632, 2048]];
/** Token counts of the GEMM figures (4096 x 4096): batched decode, then prefill chunks. */
const GEMM_ROWS = [1, 2, 4, 8, 16];
const PREFILL_CHUNKS = [64, 128, 256, 512];
const MAX_TOKENS = 512;

function q4Bytes(n: number, k: number): number {
  return n * k / 32 * 18;
}

interface Timing {
  /** Mean wall-clock ms per call in the fastest window. */
  ms: number;
  /** Process CPU ms per call over all windows: what the calls cost when the core is shared. */
  cpuMs: number;
}

/** Times `fn` after warming it up (V8 tiers up from Liftoff). */
function timeIt(
  fn: () => void,
  windows = WINDOWS,
  windowMs = WINDOW_MS,
  warmMs = WARM_MS,
): Timing {
  const warmEnd = performance.now() + warmMs;
  while (performance.now() < warmEnd) fn();
  let best = Infinity;
  let total = 0;
  const cpu0 = process.cpuUsage();
  for (let w = 0; w < windows; w++) {
    let calls = 0;
    const start = performance.now();
    let now = start;
    while (now - start < windowMs) {
      fn();
      calls++;
      now = performance.now();
    }
    total += calls;
    best = Math.min(best, (now - start) / calls);
  }
  const cpu = process.cpuUsage(cpu0);
  return { ms: best, cpuMs: (cpu.user + cpu.system) / 1000 / total };
}

/** Fills `bytes` at `offset` with random Q4_0 blocks whose scales are normal f16 values. */
function fillQ4(kernels: Kernels, offset: number, bytes: number): void {
  const blockBytes = 18;
  const unit = 18 * 4096;
  const first = kernels.u8(offset, unit);
  let s = 12345;
  for (let i = 0; i < unit; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    first[i] = s >>> 24;
  }
  for (let b = 0; b < unit / blockBytes; b++) {
    const h = f32ToF16(0.002 + (b % 97) * 1e-4);
    first[b * blockBytes] = h & 255;
    first[b * blockBytes + 1] = h >> 8;
  }
  const all = kernels.u8(offset, bytes);
  for (let o = unit; o < bytes; o += unit) all.copyWithin(o, 0, Math.min(unit, bytes - o));
}

interface PoolSetup {
  kernels: Kernels;
  pool: number;
  x: number;
  xq: number;
  y: number;
}

async function setup(variant: "relaxed" | "simd128", threads: number): Promise<PoolSetup> {
  const kernels = await loadKernels({ variant, threads, arenaBytes: 160 * 1024 * 1024 });
  const { offset: pool } = kernels.allocWeights(POOL_BYTES);
  fillQ4(kernels, pool, POOL_BYTES);
  const kMax = 5632;
  const x = kernels.alloc(MAX_TOKENS * kMax * 4);
  const xv = kernels.f32(x, MAX_TOKENS * kMax);
  for (let i = 0; i < xv.length; i++) xv[i] = Math.sin(i * 0.37);
  const xq = kernels.alloc(MAX_TOKENS * kernels.q8RowBytes(kMax));
  const y = kernels.alloc(MAX_TOKENS * kMax * 4);
  return { kernels, pool, x, xq, y };
}

/** Rewrites every (n, k) matrix of the pool to the rows8 layout. */
function interleavePool(p: PoolSetup, n: number, k: number): void {
  const bytes = q4Bytes(n, k);
  for (let i = 0; i < Math.floor(POOL_BYTES / bytes); i++) {
    p.kernels.interleaveQ4_0Rows8(p.pool + i * bytes, n, k);
  }
}

/** ms per matvec, walking the pool so the weights come from DRAM. */
function matvecMs(
  p: PoolSetup,
  n: number,
  k: number,
  layout: Q4Layout,
  scalar = false,
): Timing {
  const bytes = q4Bytes(n, k);
  const count = Math.floor(POOL_BYTES / bytes);
  const ops = scalar ? p.kernels.scalar : p.kernels;
  p.kernels.quantizeQ8_0(p.x, p.xq, 1, k);
  let i = 0;
  const run = () => {
    ops.matmulQ4_0Q8_0(p.pool + (i++ % count) * bytes, p.xq, p.y, 1, n, k, layout);
  };
  return scalar ? timeIt(run, 1, 300) : timeIt(run);
}

/** ms per (m, n) x (n, k) product, walking the pool like `matvecMs`. */
function gemmMs(
  p: PoolSetup,
  m: number,
  n: number,
  k: number,
  scalar = false,
  windowMs = 300,
  warmMs = WARM_MS,
): Timing {
  const bytes = q4Bytes(n, k);
  const count = Math.floor(POOL_BYTES / bytes);
  const ops = scalar ? p.kernels.scalar : p.kernels;
  p.kernels.quantizeQ8_0(p.x, p.xq, m, k);
  let i = 0;
  const run = () => {
    ops.matmulQ4_0Q8_0(p.pool + (i++ % count) * bytes, p.xq, p.y, m, n, k, "rows8");
  };
  return scalar ? timeIt(run, 1, 400, warmMs) : timeIt(run, 2, windowMs, warmMs);
}

/** Rounds of each batch size against m = 1 in `gemmSpeedups`. */
const GEMM_ROUNDS = 5;

/**
 * Tokens/s of the 4096 x 4096 product at each batch size and prefill chunk, over the m = 1
 * matvec's, on one thread (the pool must hold 4096 x 4096 matrices in the rows8 layout): the
 * median of rounds that each time m = 1 and then m, so that a slow spell of the shared machine
 * (seconds long, here: once both m = 2 and m = 4 read x0.34) falls on both sides of a ratio.
 */
function gemmSpeedups(p: PoolSetup): Record<string, number> {
  const [n, k] = [4096, 4096];
  const perToken = (m: number, windowMs = 100, warmMs = 50) =>
    gemmMs(p, m, n, k, false, windowMs, warmMs).ms / m;
  const out: Record<string, number> = {};
  for (const m of [...GEMM_ROWS.slice(1), ...PREFILL_CHUNKS]) {
    const ratios = Array.from({ length: GEMM_ROUNDS }, () => perToken(1) / perToken(m));
    out[`m${m}`] = round(median(ratios));
  }
  const scalar1 = gemmMs(p, 1, n, k, true).ms;
  out.scalar_speedup_m8 = round(scalar1 * 8 / gemmMs(p, 8, n, k, true).ms);
  out.matvec_gmacs = round(n * k / perToken(1, 300, WARM_MS) / 1e6, 1);
  return out;
}

function readMs(p: PoolSetup, n: number, k: number): Timing {
  const bytes = q4Bytes(n, k);
  const count = Math.floor(POOL_BYTES / bytes);
  const aligned = bytes - bytes % 64;
  let i = 0;
  return timeIt(() => {
    p.kernels.readSum(p.pool + (i++ % count) * bytes, aligned);
  });
}

function gbps(bytes: number, ms: number): number {
  return bytes / ms / 1e6;
}

function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** A llama2.c 110M-shaped model (dim 768, 12 layers, hidden 2048, vocab 32000) in the pool. */
interface Model110M {
  k: Kernels;
  /** Weight offsets of layer l: q, k, v, o, gate, up, down. */
  w: (layer: number) => number[];
  wcls: number;
  buf: Record<"x" | "xb" | "q" | "kk" | "v" | "att" | "h1" | "h3" | "logits" | "xq", number>;
  norm: number;
  cos: number;
  sin: number;
  /** Per layer: contiguous f32 K and V (heads, ctx, headDim). */
  flat: [number, number][];
  /** Per layer: paged f16 K and V regions, one block table for all. */
  paged: [number, number][];
  table: number;
  ctx: number;
}

const M110 = { dim: 768, hidden: 2048, layers: 12, heads: 12, vocab: 32000, blockSize: 16 };

function model110M(p: PoolSetup, ctx: number): Model110M {
  const k = p.kernels;
  const { dim, hidden, layers, heads, vocab } = M110;
  const headDim = dim / heads;
  const f32s = (n: number) => k.alloc(n * 4);
  const buf = {
    x: f32s(dim),
    xb: f32s(dim),
    q: f32s(dim),
    kk: f32s(dim),
    v: f32s(dim),
    att: f32s(dim),
    h1: f32s(hidden),
    h3: f32s(hidden),
    logits: f32s(vocab),
    xq: k.alloc(k.q8RowBytes(hidden)),
  };
  const [cos, sin, norm] = [f32s(headDim), f32s(headDim), f32s(dim)];
  k.f32(norm, dim).fill(1);
  k.f32(cos, headDim).fill(1);
  k.f32(buf.x, dim).fill(0.5);
  const sq = q4Bytes(dim, dim);
  const up = q4Bytes(hidden, dim);
  const layerBytes = 4 * sq + 3 * up;
  const w = (l: number) =>
    [0, sq, 2 * sq, 3 * sq, 4 * sq, 4 * sq + up, 4 * sq + 2 * up].map((o) =>
      p.pool + l * layerBytes + o
    );
  const wcls = p.pool + layers * layerBytes;
  fillQ4(k, p.pool, layers * layerBytes + q4Bytes(vocab, dim));
  for (let l = 0; l < layers; l++) {
    const [wq, wk, wv, wo, wg, wu, wd] = w(l);
    for (const m of [wq!, wk!, wv!, wo!]) k.interleaveQ4_0Rows8(m, dim, dim);
    for (const m of [wg!, wu!]) k.interleaveQ4_0Rows8(m, hidden, dim);
    k.interleaveQ4_0Rows8(wd!, dim, hidden);
  }
  k.interleaveQ4_0Rows8(wcls, vocab, dim);
  const cacheFloats = heads * ctx * headDim;
  const src = sineCache(k, ctx);
  const flat = Array.from({ length: layers }, (): [number, number] => {
    const [kc, vc] = [f32s(cacheFloats), f32s(cacheFloats)];
    k.f32(kc, cacheFloats).set(k.f32(src, cacheFloats));
    k.f32(vc, cacheFloats).set(k.f32(src, cacheFloats));
    return [kc, vc];
  });
  const { regions: paged, table } = pagedLayers(k, ctx, src);
  return { k, w, wcls, buf, norm, cos, sin, flat, paged, table, ctx };
}

/** One layer's K (or V) of `ctx` positions, (heads, ctx, headDim) f32 items sin(i). */
function sineCache(k: Kernels, ctx: number): number {
  const floats = M110.dim * ctx;
  const src = k.alloc(floats * 4);
  k.f32(src, floats).set(Float32Array.from({ length: floats }, (_, i) => Math.sin(i)));
  return src;
}

/** Paged f16 K and V regions of the 12 layers, each holding the `ctx` positions of `src`. */
function pagedLayers(
  k: Kernels,
  ctx: number,
  src: number,
): { regions: [number, number][]; table: number } {
  const { layers, heads, dim, blockSize } = M110;
  const headDim = dim / heads;
  const blocks = Math.ceil(ctx / blockSize);
  // In position order, as the KV pool hands a sequence its blocks (lowest free first).
  const table = k.alloc(blocks * 4);
  new Int32Array(k.memory.buffer, table, blocks).set(
    Int32Array.from({ length: blocks }, (_, b) => b),
  );
  const regions = Array.from({ length: layers }, (): [number, number] => {
    const kv: [number, number] = [k.alloc(dim * ctx * 2), k.alloc(dim * ctx * 2)];
    for (const r of kv) {
      k.storeKvPaged(
        src,
        ctx * headDim,
        headDim,
        r,
        table,
        blockSize,
        "f16",
        heads,
        headDim,
        0,
        ctx,
      );
    }
    return kv;
  });
  return { regions, table };
}

/**
 * One decode step at the end of the context. `fused`: q/k/v and gate/up as one job each
 * over one quantized input, the new K and V stored into the paged f16 cache and attention
 * read from it; else seven matmul jobs per layer over the contiguous f32 cache.
 */
function decodeStep(mm: Model110M, fused: boolean): void {
  const { k, buf: b, norm, ctx } = mm;
  const { dim, hidden, layers, heads, vocab, blockSize } = M110;
  const headDim = dim / heads;
  const shape = {
    m: 1,
    nHeads: heads,
    nKvHeads: heads,
    headDim,
    kvLen: ctx,
    qPos0: ctx - 1,
    scale: 1 / Math.sqrt(headDim),
  };
  for (let l = 0; l < layers; l++) {
    const [wq, wk, wv, wo, wg, wu, wd] = mm.w(l) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    k.rmsNorm(b.x, norm, b.xb, 1, dim, 1e-5);
    k.quantizeQ8_0(b.xb, b.xq, 1, dim);
    if (fused) {
      k.matmulQ4_0Q8_0Many(b.xq, 1, dim, [
        { w: wq, y: b.q, n: dim, layout: "rows8" },
        { w: wk, y: b.kk, n: dim, layout: "rows8" },
        { w: wv, y: b.v, n: dim, layout: "rows8" },
      ]);
    } else {
      k.matmulQ4_0Q8_0(wq, b.xq, b.q, 1, dim, dim, "rows8");
      k.matmulQ4_0Q8_0(wk, b.xq, b.kk, 1, dim, dim, "rows8");
      k.matmulQ4_0Q8_0(wv, b.xq, b.v, 1, dim, dim, "rows8");
    }
    k.ropeRotateHalf(b.q, mm.cos, mm.sin, b.q, 1, heads, headDim);
    if (fused) {
      const [kr, vr] = mm.paged[l]!;
      k.storeKvPaged(
        b.kk,
        headDim,
        dim,
        kr,
        mm.table,
        blockSize,
        "f16",
        heads,
        headDim,
        ctx - 1,
        1,
      );
      k.storeKvPaged(b.v, headDim, dim, vr, mm.table, blockSize, "f16", heads, headDim, ctx - 1, 1);
      k.attentionPaged(b.q, b.att, kr, vr, mm.table, { ...shape, blockSize, item: "f16" });
    } else {
      const [kc, vc] = mm.flat[l]!;
      k.attention(b.q, kc, vc, b.att, { ...shape, capacity: ctx });
    }
    k.quantizeQ8_0(b.att, b.xq, 1, dim);
    k.matmulQ4_0Q8_0(wo, b.xq, b.xb, 1, dim, dim, "rows8");
    k.rmsNorm(b.x, norm, b.xb, 1, dim, 1e-5);
    k.quantizeQ8_0(b.xb, b.xq, 1, dim);
    if (fused) {
      k.matmulQ4_0Q8_0Many(b.xq, 1, dim, [
        { w: wg, y: b.h1, n: hidden, layout: "rows8" },
        { w: wu, y: b.h3, n: hidden, layout: "rows8" },
      ]);
    } else {
      k.matmulQ4_0Q8_0(wg, b.xq, b.h1, 1, hidden, dim, "rows8");
      k.matmulQ4_0Q8_0(wu, b.xq, b.h3, 1, hidden, dim, "rows8");
    }
    k.siluGate(b.h1, b.h3, b.h1, hidden);
    k.quantizeQ8_0(b.h1, b.xq, 1, hidden);
    k.matmulQ4_0Q8_0(wd, b.xq, b.xb, 1, dim, hidden, "rows8");
  }
  k.rmsNorm(b.x, norm, b.xb, 1, dim, 1e-5);
  k.quantizeQ8_0(b.xb, b.xq, 1, dim);
  k.matmulQ4_0Q8_0(mm.wcls, b.xq, b.logits, 1, vocab, dim, "rows8");
}

/** Main-thread work between kernel calls in `layerMatmuls`, like the graph executor's. */
const GAP_MS = 0.02;

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/**
 * The matmuls of the 12 layers alone (q/k/v and gate/up as one job each), as in a decode step;
 * `gap`: with GAP_MS of main-thread work after each call, which a worker that sleeps between
 * calls wakes up late for.
 */
function layerMatmuls(mm: Model110M, gap = false): void {
  const { k, buf: b } = mm;
  const { dim, hidden, layers } = M110;
  for (let l = 0; l < layers; l++) {
    const [wq, wk, wv, wo, wg, wu, wd] = mm.w(l) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    k.matmulQ4_0Q8_0Many(b.xq, 1, dim, [
      { w: wq, y: b.q, n: dim, layout: "rows8" },
      { w: wk, y: b.kk, n: dim, layout: "rows8" },
      { w: wv, y: b.v, n: dim, layout: "rows8" },
    ]);
    if (gap) busyWait(GAP_MS);
    k.matmulQ4_0Q8_0(wo, b.xq, b.xb, 1, dim, dim, "rows8");
    if (gap) busyWait(GAP_MS);
    k.matmulQ4_0Q8_0Many(b.xq, 1, dim, [
      { w: wg, y: b.h1, n: hidden, layout: "rows8" },
      { w: wu, y: b.h3, n: hidden, layout: "rows8" },
    ]);
    if (gap) busyWait(GAP_MS);
    k.matmulQ4_0Q8_0(wd, b.xq, b.xb, 1, dim, hidden, "rows8");
    if (gap) busyWait(GAP_MS);
  }
}

/** The attention of the 12 layers for one token at the end of the context. */
function attentionOnly(mm: Model110M, item: "contiguous" | "f16"): void {
  const { k, buf: b, ctx } = mm;
  const { dim, layers, heads, blockSize } = M110;
  const headDim = dim / heads;
  const shape = {
    m: 1,
    nHeads: heads,
    nKvHeads: heads,
    headDim,
    kvLen: ctx,
    qPos0: ctx - 1,
    scale: 1 / Math.sqrt(headDim),
  };
  for (let l = 0; l < layers; l++) {
    if (item === "f16") {
      const [kr, vr] = mm.paged[l]!;
      k.attentionPaged(b.q, b.att, kr, vr, mm.table, { ...shape, blockSize, item: "f16" });
    } else {
      const [kc, vc] = mm.flat[l]!;
      k.attention(b.q, kc, vc, b.att, { ...shape, capacity: ctx });
    }
  }
}

/** Positions cached, and query rows of a prompt chunk, in `promptAttention`. */
const PROMPT_CTX = 1024;
const PROMPT_ROWS = 128;

/**
 * The attention of the 12 layers for the last `m` of `ctx` positions (a prompt chunk, or a
 * decode step for m = 1); returns its multiply-adds.
 */
function promptAttention(
  k: Kernels,
  layers: { regions: [number, number][]; table: number },
  q: number,
  out: number,
  ctx: number,
  m: number,
): number {
  const { heads, dim, blockSize } = M110;
  const headDim = dim / heads;
  const shape = {
    m,
    nHeads: heads,
    nKvHeads: heads,
    headDim,
    kvLen: ctx,
    qPos0: ctx - m,
    scale: 1 / Math.sqrt(headDim),
    blockSize,
    item: "f16" as const,
  };
  for (const [kr, vr] of layers.regions) k.attentionPaged(q, out, kr, vr, layers.table, shape);
  let visible = 0;
  for (let t = 0; t < m; t++) visible += ctx - m + t + 1;
  return layers.regions.length * heads * visible * headDim * 2;
}

/** CPU seconds per wall second that two busy workers get: 2 when both cores are free. */
async function availableCores(ms = 300): Promise<number> {
  const code = `postMessage("ready");
    onmessage = () => {
      const end = performance.now() + ${ms}; let s = 0;
      while (performance.now() < end) for (let i = 0; i < 1e4; i++) s += i;
      postMessage(s);
    };`;
  const url = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
  const workers = [0, 1].map(() => new Worker(url, { type: "module" }));
  const next = () =>
    Promise.all(workers.map((w) => new Promise((resolve) => (w.onmessage = resolve))));
  await next();
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const done = next();
  for (const w of workers) w.postMessage("go");
  await done;
  const wall = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  for (const w of workers) w.terminate();
  URL.revokeObjectURL(url);
  return (cpu.user + cpu.system) / 1000 / wall;
}

/** Refills the pool with fresh GGML (n, k) matrices, then rewrites them to rows8 if asked. */
function freshPool(p: PoolSetup, n: number, k: number, layout: Q4Layout): void {
  fillQ4(p.kernels, p.pool, POOL_BYTES);
  if (layout === "rows8") interleavePool(p, n, k);
}

function matvecFigures(p: PoolSetup, n: number, kk: number): Record<string, number> {
  const k = p.kernels;
  const bytes = q4Bytes(n, kk);
  k.threads = 1;
  freshPool(p, n, kk, "ggml");
  const tg = matvecMs(p, n, kk, "ggml").ms;
  interleavePool(p, n, kk);
  const m1 = matvecMs(p, n, kk, "rows8");
  const mr = readMs(p, n, kk);
  const t1 = m1.ms;
  const tr = mr.ms;
  const ts = matvecMs(p, n, kk, "rows8", true).ms;
  k.threads = k.maxThreads;
  const t2 = matvecMs(p, n, kk, "rows8").ms;
  k.threads = 1;
  k.q4Streams = k.maxQ4Streams;
  const t1s = matvecMs(p, n, kk, "rows8").ms;
  k.threads = k.maxThreads;
  const t2s = matvecMs(p, n, kk, "rows8").ms;
  k.threads = 1;
  k.q4Streams = 1;
  console.log(
    `q4_0 matvec ${`${n}x${kk}`.padEnd(10)} 1t ${t1.toFixed(3)} ms ${
      gbps(bytes, t1).toFixed(2)
    } GB/s (cpu-time ${gbps(bytes, m1.cpuMs).toFixed(2)}) | read ${gbps(bytes, tr).toFixed(2)} ` +
      `GB/s (cpu-time ${gbps(bytes, mr.cpuMs).toFixed(2)}) ratio ${(tr / t1).toFixed(2)} | ` +
      `ggml layout ${gbps(bytes, tg).toFixed(2)} GB/s | scalar ${ts.toFixed(2)} ms ` +
      `(x${(ts / t1).toFixed(1)}) | 2t ${t2.toFixed(3)} ms ${gbps(bytes, t2).toFixed(2)} GB/s ` +
      `(x${(t1 / t2).toFixed(2)}) | ${k.maxQ4Streams} weight streams: 1t ${
        gbps(bytes, t1s).toFixed(2)
      } GB/s (x${(t1 / t1s).toFixed(2)} one), 2t ${gbps(bytes, t2s).toFixed(2)} GB/s (x${
        (t2 / t2s).toFixed(2)
      } one)`,
  );
  return {
    matvec_ms_1t: round(t1, 4),
    q40_matvec_gbps_1t: round(gbps(bytes, t1)),
    read_baseline_gbps_1t: round(gbps(bytes, tr)),
    ratio_to_read_1t: round(tr / t1),
    q40_matvec_gbps_1t_ggml_layout: round(gbps(bytes, tg)),
    ratio_to_read_1t_ggml_layout: round(tr / tg),
    q40_matvec_gbps_1t_cpu: round(gbps(bytes, m1.cpuMs)),
    read_baseline_gbps_1t_cpu: round(gbps(bytes, mr.cpuMs)),
    ratio_to_read_1t_cpu: round(mr.cpuMs / m1.cpuMs),
    ratio_to_scalar_1t: round(ts / t1),
    q40_matvec_gbps_2t: round(gbps(bytes, t2)),
    speedup_2t: round(t1 / t2),
    q40_matvec_gbps_1t_streams: round(gbps(bytes, t1s)),
    q40_matvec_gbps_2t_streams: round(gbps(bytes, t2s)),
    streams_speedup_1t: round(t1 / t1s),
    streams_speedup_2t: round(t2 / t2s),
  };
}

function printGemm(variant: string, g: Record<string, number>): void {
  const rows = GEMM_ROWS.slice(1).map((m) => `m=${m} x${g[`m${m}`]!.toFixed(2)}`).join(" ");
  const chunks = PREFILL_CHUNKS.map((m) => `${m} x${g[`m${m}`]!.toFixed(2)}`).join(" ");
  console.log(
    `${variant} q4_0 4096x4096 tokens/s over m=1, 1t: ${rows} | prefill ${chunks} | ` +
      `scalar twin m=8 x${g.scalar_speedup_m8!.toFixed(2)}`,
  );
}

async function main(): Promise<void> {
  const started = performance.now();
  const results: Record<string, Record<string, number>> = {};
  const relaxed = await setup("relaxed", 2);
  const k = relaxed.kernels;
  const variant = k.variant;
  const cores = await availableCores();
  console.log(
    `variant ${variant}, max threads ${k.maxThreads}, loadavg ${Deno.loadavg().join(" ")}, ` +
      `cores available to two busy workers ${cores.toFixed(2)}`,
  );
  for (const [n, kk] of SHAPES) results[`${n}x${kk}`] = matvecFigures(relaxed, n, kk);

  const [pn, pk, pm] = [4096, 4096, 128];
  freshPool(relaxed, pn, pk, "rows8");
  k.threads = 1;
  // From here on the kernels read and sum as a model's load would set them on this machine.
  const poolMatrices = Array.from(
    { length: Math.floor(POOL_BYTES / q4Bytes(pn, pk)) },
    (_, i) => ({ offset: relaxed.pool + i * q4Bytes(pn, pk), n: pn, k: pk }),
  );
  const tuning = tuneQ4(k, poolMatrices);
  if (tuning) {
    console.log(
      `tuneQ4 over the pool: ${tuning.streams} weight stream(s) (x${
        tuning.streamsSpeedup.toFixed(2)
      } one), ${tuning.i32Sums ? "i32" : "i16"} sums (i32 x${
        tuning.i32SumsSpeedup.toFixed(2)
      } i16), tiles from ${tuning.tileFrom} tokens (${
        tileSpeedups(tuning).map((s) => `x${s.speedup.toFixed(2)} at ${s.tokens}`).join(", ")
      }); the figures below use them`,
    );
  }
  const gemm = gemmSpeedups(relaxed);
  printGemm(variant, gemm);
  const dotPeak = round(dotPeakGmacs(relaxed.kernels, 256, (call) => timeIt(call).ms), 1);
  const ceiling = round(dotPeak / gemm.matvec_gmacs!);
  console.log(
    `dot-product roofline, 1t: ${dotPeak} GMAC/s (i8 dot products summed in i16, operands in ` +
      `L1 and registers, nothing else) | m=1 matvec ${gemm.matvec_gmacs} GMAC/s | so no m ` +
      `makes Q4_0 tokens/s more than x${ceiling.toFixed(2)} that of m=1`,
  );
  const prefill1 = gemmMs(relaxed, pm, pn, pk);
  k.threads = k.maxThreads;
  const prefill2 = gemmMs(relaxed, pm, pn, pk).ms;
  k.threads = 1;
  const flops = 2 * pm * pn * pk;
  console.log(
    `q4_0 prefill 128 tokens 4096x4096: 1t ${prefill1.ms.toFixed(2)} ms ${
      (flops / prefill1.ms / 1e6).toFixed(1)
    } GFLOP/s (cpu-time ${(flops / prefill1.cpuMs / 1e6).toFixed(1)}) | 2t ${
      (flops / prefill2 / 1e6).toFixed(1)
    } GFLOP/s (x${(prefill1.ms / prefill2).toFixed(2)})`,
  );

  const decode: Record<string, number> = {};
  const mark = k.mark();
  const mm = model110M(relaxed, 256);
  for (const threads of [1, k.maxThreads]) {
    k.threads = threads;
    const t = `${threads}t`;
    const fused = timeIt(() => decodeStep(mm, true), 2, 300);
    const separate = timeIt(() => decodeStep(mm, false), 2, 300).ms;
    const layers = timeIt(() => layerMatmuls(mm), 2, 300).ms;
    // The matmuls' share of the time with gaps: the gaps themselves run on one thread.
    const gapped = timeIt(() => layerMatmuls(mm, true), 2, 300).ms - 4 * M110.layers * GAP_MS;
    decode[`layer_matmuls_gap_ms_${t}`] = round(gapped, 3);
    if (threads === 1) decode.decode_tok_s_1t_cpu = round(1000 / fused.cpuMs, 1);
    decode[`decode_tok_s_${t}`] = round(1000 / fused.ms, 1);
    decode[`decode_tok_s_${t}_separate_f32_cache`] = round(1000 / separate, 1);
    decode[`layer_matmuls_ms_${t}`] = round(layers, 3);
    console.log(
      `decode step, 110M shape, Q4_0, ctx 256, ${t}: ${fused.ms.toFixed(2)} ms (${
        (1000 / fused.ms).toFixed(1)
      } tok/s; q/k/v and gate/up one job each, paged f16 cache) | seven jobs per layer, ` +
        `contiguous f32 cache ${separate.toFixed(2)} ms | the layers' matmuls alone ` +
        `${layers.toFixed(2)} ms, with ${GAP_MS * 1000} us of other work after each call ` +
        `${gapped.toFixed(2)} ms (the gaps not counted)`,
    );
  }
  decode.layer_matmuls_speedup_2t = round(
    decode.layer_matmuls_ms_1t! / decode[`layer_matmuls_ms_${k.maxThreads}t`]!,
  );
  decode.layer_matmuls_gap_speedup_2t = round(
    decode.layer_matmuls_gap_ms_1t! / decode[`layer_matmuls_gap_ms_${k.maxThreads}t`]!,
  );
  k.threads = 1;
  const flat = timeIt(() => attentionOnly(mm, "contiguous"), 2, 200).cpuMs;
  const f16 = timeIt(() => attentionOnly(mm, "f16"), 2, 200).cpuMs;
  decode.attention_ms_ctx256_contiguous_f32 = round(flat, 3);
  decode.attention_ms_ctx256_paged_f16 = round(f16, 3);
  console.log(
    `attention, 12 layers, ctx 256, 1t (cpu-time): contiguous f32 ${flat.toFixed(3)} ms | ` +
      `paged f16 (blocks of ${M110.blockSize}) ${f16.toFixed(3)} ms`,
  );
  k.reset(mark);
  const cached = pagedLayers(k, PROMPT_CTX, sineCache(k, PROMPT_CTX));
  const [q, out] = [k.alloc(PROMPT_ROWS * M110.dim * 4), k.alloc(PROMPT_ROWS * M110.dim * 4)];
  k.f32(q, PROMPT_ROWS * M110.dim).set(
    Float32Array.from({ length: PROMPT_ROWS * M110.dim }, (_, i) => Math.cos(i * 0.37)),
  );
  const rate = (m: number) => {
    const macs = promptAttention(k, cached, q, out, PROMPT_CTX, m);
    const cpuMs = timeIt(() => promptAttention(k, cached, q, out, PROMPT_CTX, m), 2, 300).cpuMs;
    return { cpuMs, gmacs: macs / cpuMs / 1e6 };
  };
  const chunk = rate(PROMPT_ROWS);
  const step = rate(1);
  decode.attention_prompt_ms_ctx1024_m128 = round(chunk.cpuMs, 3);
  decode.attention_prompt_gmacs_ratio_to_decode = round(chunk.gmacs / step.gmacs);
  console.log(
    `attention, 12 layers, paged f16, ${PROMPT_ROWS} prompt rows after ${
      PROMPT_CTX - PROMPT_ROWS
    } cached, 1t (cpu-time): ${chunk.cpuMs.toFixed(2)} ms, ${chunk.gmacs.toFixed(2)} GMAC/s ` +
      `(x${(chunk.gmacs / step.gmacs).toFixed(2)} a decode step's ${
        step.gmacs.toFixed(2)
      } at ${PROMPT_CTX} positions)`,
  );
  k.reset(mark);
  k.close();

  const simd = await setup("simd128", 1);
  for (const [n, kk] of SHAPES) {
    freshPool(simd, n, kk, "rows8");
    const t = matvecMs(simd, n, kk, "rows8").ms;
    const name = `${n}x${kk}`;
    const ratio = t / results[name]!.matvec_ms_1t!;
    results[name]!.ratio_to_simd128_1t = round(ratio);
    results[name]!.simd128_gbps_1t = round(gbps(q4Bytes(n, kk), t));
    console.log(
      `simd128 matvec ${name.padEnd(10)} 1t ${t.toFixed(3)} ms (${variant} is x${
        ratio.toFixed(2)
      } faster)`,
    );
  }
  freshPool(simd, pn, pk, "rows8");
  const simdGemm = gemmSpeedups(simd);
  printGemm("simd128", simdGemm);
  simd.kernels.close();

  const main = results["4096x4096"]!;
  const summary = {
    variant,
    q40_matvec_gbps_1t: main.q40_matvec_gbps_1t,
    read_baseline_gbps_1t: main.read_baseline_gbps_1t,
    ratio_to_read_1t: main.ratio_to_read_1t,
    q40_matvec_gbps_1t_ggml_layout: main.q40_matvec_gbps_1t_ggml_layout,
    ratio_to_read_1t_ggml_layout: main.ratio_to_read_1t_ggml_layout,
    q40_matvec_gbps_1t_cpu: main.q40_matvec_gbps_1t_cpu,
    read_baseline_gbps_1t_cpu: main.read_baseline_gbps_1t_cpu,
    ratio_to_read_1t_cpu: main.ratio_to_read_1t_cpu,
    speedup_2t: main.speedup_2t,
    q40_matvec_gbps_2t: main.q40_matvec_gbps_2t,
    q40_matvec_gbps_1t_streams: main.q40_matvec_gbps_1t_streams,
    streams_speedup_1t: main.streams_speedup_1t,
    streams_speedup_2t: main.streams_speedup_2t,
    tuned_streams: tuning?.streams ?? 1,
    tuned_i32_sums: tuning?.i32Sums ?? false,
    tuned_tile_from: tuning?.tileFrom ?? 8,
    ratio_to_scalar_1t: main.ratio_to_scalar_1t,
    ratio_to_simd128_1t: main.ratio_to_simd128_1t,
    gemm_speedup_m8: gemm.m8,
    dot_peak_gmacs_1t: dotPeak,
    matvec_gmacs_1t: gemm.matvec_gmacs,
    gemm_speedup_ceiling: ceiling,
    prefill_ratio_to_matvec: gemm[`m${pm}`],
    prefill_gflops: round(flops / prefill1.ms / 1e6, 2),
    prefill_gflops_2t: round(flops / prefill2 / 1e6, 2),
    prefill_gflops_cpu: round(flops / prefill1.cpuMs / 1e6, 2),
    prefill_speedup_2t: round(prefill1.ms / prefill2),
    gemm_speedups: gemm,
    gemm_speedups_simd128: simdGemm,
    ...decode,
    shapes: results,
    weight_set_bytes: POOL_BYTES,
    cores_available: round(cores, 2),
    loadavg: Deno.loadavg(),
    seconds: round((performance.now() - started) / 1000, 1),
  };
  console.log(JSON.stringify(summary));
}

if (import.meta.main) await main();
