/**
 * Chooses how many weight streams the one- to seven-token Q4_0 matmuls read
 * ({@linkcode Kernels.q4Streams}) by timing both on the model's own weights, on this machine.
 *
 * Why it is measured and not fixed: a decode step reads each weight once, from memory, and
 * the memory systems seen here disagree on how to read it. On an AMD EPYC (Zen 4) one
 * forward stream through the rows8 groups ran fastest and two streams at once 0.57-0.67x;
 * on an Intel Xeon (Sapphire Rapids, under KVM) one stream got 5-6 GB/s of a 4096 x 4096
 * matrix from memory where four streams got 10-11 GB/s (14.7 against 4.7 over 64 MB of
 * weights), while from cache four streams ran 0.92x of one.
 */
import type { Kernels } from "./mod.ts";

/** A Q4_0 weight in the `"rows8"` layout, as the model holds it in the kernels' memory. */
export interface Q4Matrix {
  /** Byte offset of W (n, k). */
  offset: number;
  /** Rows of W. */
  n: number;
  /** Columns of W (a multiple of 32). */
  k: number;
}

/** What `tuneQ4Streams` measured and chose. */
export interface Q4StreamsChoice {
  /** The streams now set. */
  streams: number;
  /** Median over rounds of one stream's time over the other's (above 1: streams faster). */
  speedup: number;
  /** Bytes of weights one timed pass read. */
  bytes: number;
}

/** Below this many bytes of Q4_0 weights they stay in cache, where one stream is best. */
export const TUNE_MIN_BYTES = 16 * 1024 * 1024;
/** The most bytes one timed pass reads (the first matrices, in the order given). */
const TUNE_MAX_BYTES = 64 * 1024 * 1024;
/** Timed rounds, each one pass per setting, the order alternating. */
const ROUNDS = 3;
/** Streams must be this much faster (fraction) to be chosen. */
const MARGIN = 0.05;

const Q4_BLOCK_BYTES = 18;

/**
 * Times one-token matmuls over `matrices` reading one stream and
 * {@linkcode Kernels.maxQ4Streams}, in alternating rounds at the kernels' current thread
 * count, and sets the faster (streams only when `MARGIN` faster). Returns null, leaving the
 * setting alone, when the weights are too few to leave the cache or the build has one
 * stream. Outputs do not depend on the choice, only speed; the matmuls write into scratch.
 */
export function tuneQ4Streams(
  kernels: Kernels,
  matrices: readonly Q4Matrix[],
): Q4StreamsChoice | null {
  const wide = kernels.maxQ4Streams;
  const bytesOf = (w: Q4Matrix) => w.n * (w.k / 32) * Q4_BLOCK_BYTES;
  const total = matrices.reduce((sum, w) => sum + bytesOf(w), 0);
  if (wide === 1 || kernels.variant !== "relaxed" || total < TUNE_MIN_BYTES) return null;
  const pass: Q4Matrix[] = [];
  let bytes = 0;
  for (const w of matrices) {
    if (bytes >= TUNE_MAX_BYTES) break;
    pass.push(w);
    bytes += bytesOf(w);
  }
  const k = Math.max(...pass.map((w) => w.k));
  const n = Math.max(...pass.map((w) => w.n));
  const xq = kernels.scratch("tune_q8", kernels.q8RowBytes(k));
  const y = kernels.scratch("tune_y", 4 * n);
  kernels.u8(xq, kernels.q8RowBytes(k)).fill(0);
  const time = (streams: number): number => {
    kernels.q4Streams = streams;
    const t0 = performance.now();
    for (const w of pass) kernels.matmulQ4_0Q8_0(w.offset, xq, y, 1, w.n, w.k, "rows8");
    return performance.now() - t0;
  };
  // The first passes also take the kernels past their first, unoptimized calls.
  time(1);
  time(wide);
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    if (round % 2 === 0) {
      const one = time(1);
      ratios.push(one / time(wide));
    } else {
      const many = time(wide);
      ratios.push(time(1) / many);
    }
  }
  ratios.sort((a, b) => a - b);
  const speedup = ratios[ratios.length >> 1]!;
  kernels.q4Streams = speedup >= 1 + MARGIN ? wide : 1;
  return { streams: kernels.q4Streams, speedup, bytes };
}
