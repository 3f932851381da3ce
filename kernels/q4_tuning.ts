/**
 * Chooses, by timing both ways on the model's own weights on this machine, three things about
 * the Q4_0 matmuls that change their speed and never their bits: how many weight streams
 * the passes of one to seven tokens read ({@linkcode Kernels.q4Streams}), whether the
 * products sum dot products in i32 lanes ({@linkcode Kernels.q4I32Sums}), and from how many
 * tokens the tiles take over from those passes ({@linkcode Kernels.q4TileFrom}).
 *
 * Why measured and not fixed: the machines seen here disagree. A decode step reads each
 * weight once, from memory. On an AMD EPYC (Zen 4) one forward stream through the rows8
 * groups ran fastest and two streams at once 0.57-0.67x; on an Intel Xeon (Sapphire Rapids,
 * under KVM) one stream got 5-6 GB/s of a 4096 x 4096 matrix from memory where four streams
 * got 10-11 GB/s (14.7 against 4.7 over 64 MB of weights), while from cache four ran 0.92x
 * of one. The same Xeon has AVX-VNNI, where V8 makes `i32x4.relaxed_dot_i8x16_i7x16_add` one
 * instruction (`vpdpbusd`) and the prompt tile 1.12-1.14x faster with it; without, it is
 * three instructions and the i16 sums are fewer. On the EPYC the tiles paid from eight
 * tokens on; on the Xeon, where the passes wait on memory, four tokens took 1.31x less time
 * in tiles than in two two-token passes, six 1.50x, three 1.31x (against a two-token pass and
 * a one-token pass), while two ran 1.09x faster in one two-token pass. Once the passes took
 * up to four tokens, the passes won there too: four sequences' decode step took 1.3x less
 * time in one four-token pass than in tiles.
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

/** What `tuneQ4` measured and chose. */
export interface Q4Tuning {
  /** The weight streams now set. */
  streams: number;
  /** Median over rounds of one stream's time over several streams' (above 1: several faster). */
  streamsSpeedup: number;
  /** Bytes of weights one timed pass of the streams read. */
  bytes: number;
  /** Whether the products (tiles and passes) now sum in i32 lanes. */
  i32Sums: boolean;
  /** Median over rounds of the i16 sums' time over the i32 sums' (above 1: i32 faster). */
  i32SumsSpeedup: number;
  /** The fewest tokens the prompt tiles now take (2 to `TILE_FROM`, or 8). */
  tileFrom: number;
  /** Median over rounds of four tokens' time in passes over their time in tiles. */
  tileFromSpeedup: number;
  /**
   * The same for three tokens, then two, each timed only while the tiles won at one more
   * token (none when they lost at four).
   */
  fewerTileSpeedups: number[];
}

/** Below this many bytes of Q4_0 weights they stay in cache, where one stream is best. */
export const TUNE_MIN_BYTES = 16 * 1024 * 1024;
/** The most bytes one timed pass of the streams reads (the first matrices, in the order given). */
const TUNE_MAX_BYTES = 64 * 1024 * 1024;
/** Timed rounds, each timing both settings, the order alternating. */
const ROUNDS = 3;
/** A setting away from the default must be this much faster (fraction) to be chosen. */
const MARGIN = 0.05;
/**
 * The fewest tokens the tiles take when that is faster than passes of one to four tokens,
 * timed by four-token products over the first `BATCH_BYTES` of the weights, from memory as
 * a decode step of four sequences reads them; then three and two tokens the same way, while
 * the tiles keep winning.
 */
const TILE_FROM = 4;
const BATCH_BYTES = 32 * 1024 * 1024;
/** The prompt tile timed: tokens, most rows of the first matrix, and milliseconds per timing. */
const TILE_TOKENS = 16;
const TILE_ROWS = 512;
const TILE_MS = 4;

const Q4_BLOCK_BYTES = 18;

/**
 * Times both settings of each choice in alternating rounds on one thread, after untimed runs
 * of each (the kernels' first calls are not yet optimized), and sets the faster (the default
 * when a choice could not be timed); a setting other than the default (one stream, i16 sums,
 * tiles from 8 tokens) must win by `MARGIN`. Streams are timed by one-token passes over the
 * first 64 MB of `matrices`, the sums by 16-token products with the first 512 rows of the
 * first one, kept in cache, and where tiles start by four-token products over the first 32
 * MB (then three- and two-token ones). Returns null, leaving the settings alone, when the weights are too few to leave the
 * cache or the build is not relaxed SIMD. The matmuls write into the activation arena, freed
 * before it returns.
 */
export function tuneQ4(kernels: Kernels, matrices: readonly Q4Matrix[]): Q4Tuning | null {
  const total = matrices.reduce((sum, w) => sum + bytesOf(w), 0);
  if (kernels.variant !== "relaxed" || total < TUNE_MIN_BYTES) return null;
  const { pass, bytes } = firstBytes(matrices, TUNE_MAX_BYTES);
  // One thread: what is measured is one core's reading, and a worker's wake-ups stay out.
  // The activations and outputs are the arena's for the timing only.
  const [threads, mark] = [kernels.threads, kernels.mark()];
  kernels.threads = 1;
  try {
    return tuneOn(kernels, pass, bytes);
  } finally {
    kernels.threads = threads;
    kernels.reset(mark);
  }
}

function tuneOn(kernels: Kernels, pass: readonly Q4Matrix[], bytes: number): Q4Tuning {
  const k = Math.max(...pass.map((w) => w.k));
  const n = Math.max(...pass.map((w) => w.n));
  const xq = kernels.alloc(TILE_TOKENS * kernels.q8RowBytes(k));
  const y = kernels.alloc(4 * TILE_TOKENS * n);
  kernels.u8(xq, TILE_TOKENS * kernels.q8RowBytes(k)).fill(0);

  // Milliseconds of one product of `tokens` tokens with each of `matrices`, in turn.
  const passMs = (matrices: readonly Q4Matrix[], tokens: number) => () => {
    const t0 = performance.now();
    for (const w of matrices) kernels.matmulQ4_0Q8_0(w.offset, xq, y, tokens, w.n, w.k, "rows8");
    return performance.now() - t0;
  };

  const wide = kernels.maxQ4Streams;
  const streamsSpeedup = faster(
    () => kernels.q4Streams = 1,
    () => kernels.q4Streams = wide,
    passMs(pass, 1),
  );
  kernels.q4Streams = streamsSpeedup >= 1 + MARGIN ? wide : 1;

  const first = pass[0]!;
  const rows = Math.min(TILE_ROWS, Math.floor(first.n / 16) * 16);
  const i32SumsSpeedup = rows === 0 ? NaN : faster(
    () => kernels.q4I32Sums = false,
    () => kernels.q4I32Sums = true,
    () => {
      let reps = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < TILE_MS || reps < 2) {
        kernels.matmulQ4_0Q8_0(first.offset, xq, y, TILE_TOKENS, rows, first.k, "rows8");
        reps++;
      }
      return (performance.now() - t0) / reps;
    },
  );
  kernels.q4I32Sums = i32SumsSpeedup >= 1 + MARGIN;

  const batch = firstBytes(pass, BATCH_BYTES).pass;
  const tileFromSpeedup = faster(
    () => kernels.q4TileFrom = 8,
    () => kernels.q4TileFrom = TILE_FROM,
    passMs(batch, TILE_FROM),
  );
  kernels.q4TileFrom = tileFromSpeedup >= 1 + MARGIN ? TILE_FROM : 8;
  const fewerTileSpeedups: number[] = [];
  for (let tokens = TILE_FROM - 1; tokens >= 2 && kernels.q4TileFrom === tokens + 1; tokens--) {
    const speedup = faster(
      () => kernels.q4TileFrom = tokens + 1,
      () => kernels.q4TileFrom = tokens,
      passMs(batch, tokens),
    );
    fewerTileSpeedups.push(speedup);
    kernels.q4TileFrom = speedup >= 1 + MARGIN ? tokens : tokens + 1;
  }
  return {
    streams: kernels.q4Streams,
    streamsSpeedup,
    bytes,
    i32Sums: kernels.q4I32Sums,
    i32SumsSpeedup,
    tileFrom: kernels.q4TileFrom,
    tileFromSpeedup,
    fewerTileSpeedups,
  };
}

/** The token counts `t` timed the tiles at (four, then fewer), each with its speedup over the passes. */
export function tileSpeedups(t: Q4Tuning): { tokens: number; speedup: number }[] {
  return [t.tileFromSpeedup, ...t.fewerTileSpeedups].map((speedup, i) => ({
    tokens: TILE_FROM - i,
    speedup,
  }));
}

function bytesOf(w: Q4Matrix): number {
  return w.n * (w.k / 32) * Q4_BLOCK_BYTES;
}

/** The first matrices, up to the one that reaches `most` bytes, and their bytes. */
function firstBytes(
  matrices: readonly Q4Matrix[],
  most: number,
): { pass: Q4Matrix[]; bytes: number } {
  const pass: Q4Matrix[] = [];
  let bytes = 0;
  for (const w of matrices) {
    if (bytes >= most) break;
    pass.push(w);
    bytes += bytesOf(w);
  }
  return { pass, bytes };
}

/**
 * Median over `ROUNDS` of `time()` under `setA` over `time()` under `setB`, the order
 * alternating, after two untimed runs of each.
 */
function faster(setA: () => void, setB: () => void, time: () => number): number {
  for (const set of [setA, setB, setA, setB]) {
    set();
    time();
  }
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const timeOf = (set: () => void) => {
      set();
      return time();
    };
    if (round % 2 === 0) {
      const a = timeOf(setA);
      ratios.push(a / timeOf(setB));
    } else {
      const b = timeOf(setB);
      ratios.push(timeOf(setA) / b);
    }
  }
  ratios.sort((a, b) => a - b);
  return ratios[ratios.length >> 1]!;
}
