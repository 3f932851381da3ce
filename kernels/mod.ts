/**
 * Typed binding of the WASM SIMD kernels: every kernel takes byte offsets into the
 * module's memory (`Kernels.memory`) and element counts, never arrays.
 *
 * Memory layout, low to high: the module's stack and data, one private stack per worker,
 * the activation arena (`alloc`/`reset`, fixed capacity), then the weights region
 * (`allocWeights`), which grows the memory up to the 4 GiB wasm32 ceiling.
 *
 * @module
 */

import {
  type KernelExports,
  MATMUL_EXPORTS,
  type MatmulOp,
  MAX_TASKS,
  OP_ATTENTION,
  OP_ATTENTION_PAGED,
  OP_MATMUL_F16,
  OP_MATMUL_F32,
  OP_MATMUL_Q4_0,
  type Task,
} from "./_job.ts";
import { ThreadPool } from "./pool.ts";
import { ThreadPolicy } from "./thread_policy.ts";

export { ThreadPolicy } from "./thread_policy.ts";
export type { ThreadPolicyOptions } from "./thread_policy.ts";

/** Which SIMD build runs: relaxed SIMD (`i32x4.relaxed_dot_i8x16_i7x16_add`) or plain simd128. */
export type KernelVariant = "relaxed" | "simd128";

/** The wasm32 address space: 65536 pages of 64 KiB. */
export const WASM32_MAX_BYTES = 4 * 1024 * 1024 * 1024;

const PAGE = 65536;
const WORKER_STACK_BYTES = 256 * 1024;
const DEFAULT_ARENA_BYTES = 64 * 1024 * 1024;
const QK = 32;
const Q4_0_BLOCK_BYTES = 18;
/** Chunks per thread in a split job: a late or descheduled thread leaves its share to the others. */
const CHUNKS_PER_THREAD = 4;
/** A job with fewer multiply-adds runs on the calling thread: the hand-off would cost more. */
const MIN_SPLIT_MACS = 1 << 18;

/** Options of {@linkcode loadKernels}. */
export interface LoadKernelsOptions {
  /** Threads for matmuls and attention, main thread included. Default `navigator.hardwareConcurrency`. */
  threads?: number;
  /** `"auto"` (default) picks relaxed SIMD only if its functional self-test passes. */
  variant?: "auto" | KernelVariant;
  /** Capacity of the activation arena in bytes. Default 64 MiB. */
  arenaBytes?: number;
}

/**
 * Byte layout of a Q4_0 weight (n, k): `"ggml"` rows of 18-byte blocks as tract and GGUF
 * store them, or `"rows8"` after {@linkcode Kernels.interleaveQ4_0Rows8} (same bytes, each
 * group of 8 rows block-interleaved so decoding streams the weights in order).
 */
export type Q4Layout = "ggml" | "rows8";

/** Shapes of one attention call over a KV cache laid out (n_kv_heads, capacity, head_dim). */
export interface AttentionShape {
  /** Query rows (tokens). */
  m: number;
  /** Query heads. */
  nHeads: number;
  /** Divides `nHeads` (grouped-query attention). */
  nKvHeads: number;
  /** Values per head. */
  headDim: number;
  /** Positions the cache holds per kv head. */
  capacity: number;
  /** Valid positions in the cache. */
  kvLen: number;
  /** Cache position of query row 0; row t sees positions 0..=qPos0 + t (causal). */
  qPos0: number;
  /** Score scale, usually 1 / sqrt(headDim). */
  scale: number;
}

/** Item type of a paged KV cache: f16 (default in a model's cache) or f32 (exact reference). */
export type KvItem = "f16" | "f32";

/**
 * Shapes of one `attentionPaged` call. Each cache tensor (a layer's K, or V) is a pool
 * region of blocks; block b holds `blockSize` positions of every kv head, laid out
 * (nKvHeads, blockSize, headDim) of `item`s. A sequence's block table (i32 block ids) maps
 * position p to block `table[p / blockSize]`: position p of kv head g is at byte
 * `base + ((table[p / blockSize] * nKvHeads + g) * blockSize + p % blockSize) * headDim * itemBytes`.
 */
export interface PagedAttentionShape {
  /** Query rows (tokens). */
  m: number;
  /** Query heads; head h reads kv head floor(h / (nHeads / nKvHeads)). */
  nHeads: number;
  /** Divides `nHeads` (grouped-query attention). */
  nKvHeads: number;
  /** Values per head. */
  headDim: number;
  /** Positions per block. */
  blockSize: number;
  /** Valid positions of the sequence. */
  kvLen: number;
  /** Position of query row 0; row t sees positions 0..=qPos0 + t (causal). */
  qPos0: number;
  /** Score scale, usually 1 / sqrt(headDim). */
  scale: number;
  /** Cache item type. */
  item: KvItem;
}

/** One product of a `matmul*Many` call: W (n, k) at `w` @ the shared input -> y (m, n) at `y`. */
export interface MatmulTarget {
  /** Byte offset of W (n, k). */
  w: number;
  /** Byte offset of the output y (m, n), f32. */
  y: number;
  /** Rows of W. */
  n: number;
  /** Byte layout of a Q4_0 W (default "ggml"); ignored for f32 and f16 weights. */
  layout?: Q4Layout;
}

/** A slot in the weights region: write the tensor bytes into `bytes` once. */
export interface WeightSlot {
  /** Byte offset of the slot in `Kernels.memory`: what the kernels take. */
  offset: number;
  /** View of the slot; valid until the memory grows again (take a new one with `u8`). */
  bytes: Uint8Array;
}

/**
 * The kernels, over byte offsets into `Kernels.memory`. Matrices are row-major;
 * weights W are (n, k) like `linear`, activations x are (m, k), outputs y are (m, n).
 */
export interface KernelOps {
  /** x (m, k) f32 -> xq (m, q8RowBytes(k)) Q8_0 activations; k % 32 == 0. */
  quantizeQ8_0(x: number, xq: number, m: number, k: number): void;
  /** W (n, k) Q4_0 (18-byte blocks, `layout`, default "ggml") @ xq (m, k) Q8_0 -> y (m, n) f32. */
  matmulQ4_0Q8_0(
    w: number,
    xq: number,
    y: number,
    m: number,
    n: number,
    k: number,
    layout?: Q4Layout,
  ): void;
  /**
   * Several Q4_0 products of one quantized input xq (m, k), e.g. q/k/v or gate/up, as one
   * job over the threads: one hand-off instead of one per product.
   */
  matmulQ4_0Q8_0Many(xq: number, m: number, k: number, targets: readonly MatmulTarget[]): void;
  /** W (n, k) f32 @ x (m, k) f32 -> y (m, n). */
  matmulF32(w: number, x: number, y: number, m: number, n: number, k: number): void;
  /** Several f32-weight products of one input x (m, k) as one job (see `matmulQ4_0Q8_0Many`). */
  matmulF32Many(x: number, m: number, k: number, targets: readonly MatmulTarget[]): void;
  /** W (n, k) f16 bits @ x (m, k) f32 -> y (m, n). */
  matmulF16(w: number, x: number, y: number, m: number, n: number, k: number): void;
  /** Several f16-weight products of one input x (m, k) as one job (see `matmulQ4_0Q8_0Many`). */
  matmulF16Many(x: number, m: number, k: number, targets: readonly MatmulTarget[]): void;
  /** x (m, d) -> y (m, d) = x / sqrt(mean(x^2) + eps) * w; w (d,) or 0 for none; y may be x. */
  rmsNorm(x: number, w: number, y: number, m: number, d: number, eps: number): void;
  /** x (m, nHeads, headDim), cos/sin (m, headDim) -> y = x * cos + rotate_half(x) * sin; y may be x. */
  ropeRotateHalf(
    x: number,
    cos: number,
    sin: number,
    y: number,
    m: number,
    nHeads: number,
    headDim: number,
  ): void;
  /** a, b (len) -> y = silu(a) * b; y may be a or b. */
  siluGate(a: number, b: number, y: number, len: number): void;
  /** x (m, n) -> y (m, n), softmax along rows; y may be x. */
  softmax(x: number, y: number, m: number, n: number): void;
  /** q (m, nHeads, headDim), caches (nKvHeads, capacity, headDim) -> out (m, nHeads, headDim). */
  attention(q: number, kCache: number, vCache: number, out: number, shape: AttentionShape): void;
  /**
   * q (m, nHeads, headDim) f32 over paged K and V regions at `kBase` and `vBase`, read in
   * place through the block table `table` -> out (m, nHeads, headDim) f32. Every query row
   * gets the bits it would get alone (m = 1 at its position), and the bits `attention` gives
   * over a contiguous cache of the values the items read as: f16 items read exactly, but
   * for infinities and NaNs, which read as finite values of magnitude 2^16 to 2^17.
   */
  attentionPaged(
    q: number,
    out: number,
    kBase: number,
    vBase: number,
    table: number,
    shape: PagedAttentionShape,
  ): void;
  /**
   * Writes positions pos0..pos0+count of every kv head into the paged region at `base`
   * (block table `table`, see {@linkcode PagedAttentionShape}) from f32 `src`, whose item
   * (g, s, i) sits at element `g * srcHeadStride + s * srcRowStride + i`: both a
   * (nKvHeads, S, headDim) and an (S, nKvHeads, headDim) tensor are read in place. f16 items
   * are rounded to nearest even, as `Float16Array` does.
   */
  storeKvPaged(
    src: number,
    srcHeadStride: number,
    srcRowStride: number,
    base: number,
    table: number,
    blockSize: number,
    itemType: KvItem,
    nKvHeads: number,
    headDim: number,
    pos0: number,
    count: number,
  ): void;
}

type Fn = (...args: number[]) => number;

function isPositiveInteger(v: number): boolean {
  return Number.isInteger(v) && v > 0;
}

function isDim(v: number): boolean {
  return Number.isInteger(v) && v >= 0;
}

/** Names the first entry of `dims` that is not a dim; the caller built `dims` only after a check failed. */
function throwBadDim(op: string, dims: Record<string, number>): never {
  for (const [name, v] of Object.entries(dims)) {
    if (!isDim(v)) {
      throw new RangeError(`${op}: '${name}' must be a non-negative integer: received ${v}`);
    }
  }
  throw new RangeError(`${op}: invalid dims`);
}

function layoutFlag(layout: Q4Layout): number {
  if (layout === "ggml") return 0;
  if (layout === "rows8") return 1;
  throw new TypeError(`Unknown Q4_0 layout '${String(layout)}': expected 'ggml' or 'rows8'`);
}

function itemBytes(op: string, item: KvItem): number {
  if (item === "f16") return 2;
  if (item === "f32") return 4;
  throw new TypeError(`${op}: unknown KV item type '${String(item)}': expected 'f16' or 'f32'`);
}

function checkQ4k(op: string, k: number): void {
  if (k % QK !== 0) {
    throw new RangeError(`${op}: 'k' must be a multiple of ${QK}: received ${k}`);
  }
}

/** Kernel exports with a SIMD build under this name and a scalar twin under `<name>_generic`. */
const KERNEL_NAMES = [
  "quantize_q8_0",
  "matmul_q4_0_q8_0",
  "matmul_f32_f32",
  "matmul_f16_f32",
  "rms_norm_f32",
  "rope_rotate_half_f32",
  "silu_gate_f32",
  "softmax_f32",
  "attention_f32",
  "attention_paged",
  "store_kv_paged",
] as const;
type KernelName = typeof KERNEL_NAMES[number];
type KernelFns = Record<KernelName, Fn>;

/** Runs kernels of one wasm instance, optionally splitting matmuls over a thread pool. */
export class Ops implements KernelOps {
  #fns: KernelFns;
  #owner: Kernels;
  #pool: ThreadPool | null;

  /** `owner` null: this is the `Kernels` itself (its SIMD ops). */
  constructor(
    exports: KernelExports,
    suffix: string,
    owner: Kernels | null,
    pool: ThreadPool | null,
  ) {
    const x = exports as unknown as Record<string, Fn>;
    this.#fns = Object.fromEntries(KERNEL_NAMES.map((n) => [n, x[n + suffix]!])) as KernelFns;
    this.#owner = owner ?? (this as unknown as Kernels);
    this.#pool = pool;
  }

  #fn(name: KernelName): Fn {
    return this.#fns[name];
  }

  #parts(): number {
    return this.#pool === null ? 1 : this.#owner.threads;
  }

  quantizeQ8_0(x: number, xq: number, m: number, k: number): void {
    if (!isDim(m) || !isDim(k)) throwBadDim("quantizeQ8_0", { m, k });
    checkQ4k("quantizeQ8_0", k);
    this.#owner.checkRange(x, m * k * 4, "x");
    this.#owner.checkRange(xq, m * this.#owner.q8RowBytes(k), "xq");
    this.#fn("quantize_q8_0")(x, xq, m, k);
  }

  matmulQ4_0Q8_0(
    w: number,
    xq: number,
    y: number,
    m: number,
    n: number,
    k: number,
    layout: Q4Layout = "ggml",
  ): void {
    this.matmulQ4_0Q8_0Many(xq, m, k, [{ w, y, n, layout }]);
  }

  matmulQ4_0Q8_0Many(xq: number, m: number, k: number, targets: readonly MatmulTarget[]): void {
    const op = "matmulQ4_0Q8_0";
    if (!isDim(m) || !isDim(k)) throwBadDim(op, { m, k });
    checkQ4k(op, k);
    this.#owner.checkRange(xq, m * this.#owner.q8RowBytes(k), "xq");
    this.#matmuls(OP_MATMUL_Q4_0, op, xq, m, k, targets, (n) => n * (k / QK) * Q4_0_BLOCK_BYTES);
  }

  matmulF32(w: number, x: number, y: number, m: number, n: number, k: number): void {
    this.matmulF32Many(x, m, k, [{ w, y, n }]);
  }

  matmulF32Many(x: number, m: number, k: number, targets: readonly MatmulTarget[]): void {
    if (!isDim(m) || !isDim(k)) throwBadDim("matmulF32", { m, k });
    this.#owner.checkRange(x, m * k * 4, "x");
    this.#matmuls(OP_MATMUL_F32, "matmulF32", x, m, k, targets, (n) => n * k * 4);
  }

  matmulF16(w: number, x: number, y: number, m: number, n: number, k: number): void {
    this.matmulF16Many(x, m, k, [{ w, y, n }]);
  }

  matmulF16Many(x: number, m: number, k: number, targets: readonly MatmulTarget[]): void {
    if (!isDim(m) || !isDim(k)) throwBadDim("matmulF16", { m, k });
    this.#owner.checkRange(x, m * k * 4, "x");
    this.#matmuls(OP_MATMUL_F16, "matmulF16", x, m, k, targets, (n) => n * k * 2);
  }

  /** Checks every target, then runs them as one job (split over the threads when large enough). */
  #matmuls(
    op: MatmulOp,
    name: string,
    x: number,
    m: number,
    k: number,
    targets: readonly MatmulTarget[],
    weightBytes: (n: number) => number,
  ): void {
    if (targets.length > MAX_TASKS) {
      throw new RangeError(`${name}: at most ${MAX_TASKS} targets: received ${targets.length}`);
    }
    let rows = 0;
    for (const [i, t] of targets.entries()) {
      if (!isDim(t.n)) throwBadDim(name, { [`targets[${i}].n`]: t.n });
      this.#owner.checkRange(t.w, weightBytes(t.n), `targets[${i}].w`);
      this.#owner.checkRange(t.y, m * t.n * 4, `targets[${i}].y`);
      rows += t.n;
    }
    const rows8 = targets.map((t) => layoutFlag(t.layout ?? "ggml"));
    const threads = this.#parts();
    if (threads > 1 && rows * k * m >= MIN_SPLIT_MACS) {
      const size = Math.max(8, Math.ceil(rows / (threads * CHUNKS_PER_THREAD) / 8) * 8);
      const tasks = targets.map((t, i): Task => ({
        op,
        count: t.n,
        size,
        args: [t.w, x, t.y, m, t.n, k, rows8[i]!],
      }));
      this.#pool!.run(tasks, threads);
      return;
    }
    const fn = this.#fn(MATMUL_EXPORTS[op]);
    for (const [i, t] of targets.entries()) fn(t.w, x, t.y, m, t.n, k, 0, t.n, rows8[i]!);
  }

  rmsNorm(x: number, w: number, y: number, m: number, d: number, eps: number): void {
    if (!isDim(m) || !isDim(d)) throwBadDim("rmsNorm", { m, d });
    this.#owner.checkRange(x, m * d * 4, "x");
    this.#owner.checkRange(y, m * d * 4, "y");
    if (w !== 0) this.#owner.checkRange(w, d * 4, "w");
    this.#fn("rms_norm_f32")(x, w, y, m, d, eps);
  }

  ropeRotateHalf(
    x: number,
    cos: number,
    sin: number,
    y: number,
    m: number,
    nHeads: number,
    headDim: number,
  ): void {
    if (!isDim(m) || !isDim(nHeads) || !isDim(headDim)) {
      throwBadDim("ropeRotateHalf", { m, nHeads, headDim });
    }
    if (headDim % 2 !== 0) {
      throw new RangeError(`ropeRotateHalf: 'headDim' must be even: received ${headDim}`);
    }
    this.#owner.checkRange(x, m * nHeads * headDim * 4, "x");
    this.#owner.checkRange(y, m * nHeads * headDim * 4, "y");
    this.#owner.checkRange(cos, m * headDim * 4, "cos");
    this.#owner.checkRange(sin, m * headDim * 4, "sin");
    this.#fn("rope_rotate_half_f32")(x, cos, sin, y, m, nHeads, headDim);
  }

  siluGate(a: number, b: number, y: number, len: number): void {
    if (!isDim(len)) throwBadDim("siluGate", { len });
    this.#owner.checkRange(a, len * 4, "a");
    this.#owner.checkRange(b, len * 4, "b");
    this.#owner.checkRange(y, len * 4, "y");
    this.#fn("silu_gate_f32")(a, b, y, len);
  }

  softmax(x: number, y: number, m: number, n: number): void {
    if (!isDim(m) || !isDim(n)) throwBadDim("softmax", { m, n });
    this.#owner.checkRange(x, m * n * 4, "x");
    this.#owner.checkRange(y, m * n * 4, "y");
    this.#fn("softmax_f32")(x, y, m, n);
  }

  attention(q: number, kCache: number, vCache: number, out: number, s: AttentionShape): void {
    const { m, nHeads, nKvHeads, headDim, capacity, kvLen, qPos0 } = s;
    if (
      !isDim(m) || !isDim(nHeads) || !isDim(nKvHeads) || !isDim(headDim) || !isDim(capacity) ||
      !isDim(kvLen) || !isDim(qPos0)
    ) throwBadDim("attention", { m, nHeads, nKvHeads, headDim, capacity, kvLen, qPos0 });
    if (nKvHeads === 0 || nHeads % nKvHeads !== 0) {
      throw new RangeError(
        `attention: 'nHeads' (${nHeads}) must be a multiple of 'nKvHeads' (${nKvHeads})`,
      );
    }
    if (kvLen > capacity) {
      throw new RangeError(`attention: 'kvLen' (${kvLen}) exceeds 'capacity' (${capacity})`);
    }
    this.#owner.checkRange(q, m * nHeads * headDim * 4, "q");
    this.#owner.checkRange(out, m * nHeads * headDim * 4, "out");
    this.#owner.checkRange(kCache, nKvHeads * capacity * headDim * 4, "kCache");
    this.#owner.checkRange(vCache, nKvHeads * capacity * headDim * 4, "vCache");
    const threads = Math.min(this.#parts(), nHeads);
    const scores = this.#owner.scratch("scores", this.#owner.maxThreads * Math.max(kvLen, 1) * 4);
    const args = [q, kCache, vCache, out, scores, m, nHeads, nKvHeads, headDim, capacity, kvLen];
    if (threads > 1 && m * nHeads * kvLen * headDim * 2 >= MIN_SPLIT_MACS) {
      const task = { op: OP_ATTENTION, count: nHeads, size: 1, args: [...args, qPos0, s.scale] };
      this.#pool!.run([{ ...task, floats: [12] }], threads);
    } else {
      this.#fn("attention_f32")(...args, qPos0, s.scale, 0, nHeads);
    }
  }

  attentionPaged(
    q: number,
    out: number,
    kBase: number,
    vBase: number,
    table: number,
    s: PagedAttentionShape,
  ): void {
    const { m, nHeads, nKvHeads, headDim, blockSize, kvLen, qPos0 } = s;
    const op = "attentionPaged";
    if (
      !isDim(m) || !isDim(nHeads) || !isDim(nKvHeads) || !isDim(headDim) || !isDim(kvLen) ||
      !isDim(qPos0)
    ) throwBadDim(op, { m, nHeads, nKvHeads, headDim, kvLen, qPos0 });
    if (nKvHeads === 0 || nHeads % nKvHeads !== 0) {
      throw new RangeError(
        `${op}: 'nHeads' (${nHeads}) must be a multiple of 'nKvHeads' (${nKvHeads})`,
      );
    }
    const item = itemBytes(op, s.item);
    const blockBytes = nKvHeads * blockSize * headDim * item;
    this.#checkBlocks(
      op,
      table,
      blockSize,
      0,
      kvLen,
      [["kBase", kBase], ["vBase", vBase]],
      blockBytes,
    );
    this.#owner.checkRange(q, m * nHeads * headDim * 4, "q");
    this.#owner.checkRange(out, m * nHeads * headDim * 4, "out");
    const threads = Math.min(this.#parts(), nHeads);
    const scores = this.#owner.scratch(
      "scores",
      Math.max(nHeads, this.#owner.maxThreads) * Math.max(kvLen, 1) * 4,
    );
    const f16 = s.item === "f16" ? 1 : 0;
    const args = [q, out, kBase, vBase, table, scores, m, nHeads, nKvHeads, headDim, blockSize];
    if (threads > 1 && m * nHeads * kvLen * headDim * 2 >= MIN_SPLIT_MACS) {
      // Chunks of several heads: a call reads each block of the regions for all its heads.
      const task = {
        op: OP_ATTENTION_PAGED,
        count: nHeads,
        size: Math.ceil(nHeads / (threads * 2)),
        args: [...args, kvLen, qPos0, s.scale, f16],
        floats: [13],
      };
      this.#pool!.run([task], threads);
    } else {
      this.#fn("attention_paged")(...args, kvLen, qPos0, s.scale, f16, 0, nHeads);
    }
  }

  storeKvPaged(
    src: number,
    srcHeadStride: number,
    srcRowStride: number,
    base: number,
    table: number,
    blockSize: number,
    itemType: KvItem,
    nKvHeads: number,
    headDim: number,
    pos0: number,
    count: number,
  ): void {
    const op = "storeKvPaged";
    if (
      !isDim(srcHeadStride) || !isDim(srcRowStride) || !isDim(nKvHeads) || !isDim(headDim) ||
      !isDim(pos0) || !isDim(count)
    ) throwBadDim(op, { srcHeadStride, srcRowStride, nKvHeads, headDim, pos0, count });
    const blockBytes = nKvHeads * blockSize * headDim * itemBytes(op, itemType);
    if (count === 0 || nKvHeads === 0) return;
    this.#checkBlocks(op, table, blockSize, pos0, pos0 + count, [["base", base]], blockBytes);
    const last = (nKvHeads - 1) * srcHeadStride + (count - 1) * srcRowStride + headDim;
    this.#owner.checkRange(src, last * 4, "src");
    this.#fn("store_kv_paged")(
      src,
      srcHeadStride,
      srcRowStride,
      base,
      table,
      blockSize,
      itemType === "f16" ? 1 : 0,
      nKvHeads,
      headDim,
      pos0,
      count,
    );
  }

  /**
   * Checks the block table entries of positions p0..p1 and that each named block lies in
   * the memory for every region in `bases`.
   */
  #checkBlocks(
    op: string,
    table: number,
    blockSize: number,
    p0: number,
    p1: number,
    bases: readonly [string, number][],
    blockBytes: number,
  ): void {
    if (!isPositiveInteger(blockSize)) {
      throw new RangeError(`${op}: 'blockSize' must be a positive integer: received ${blockSize}`);
    }
    if (p1 <= p0) return;
    if (table % 4 !== 0) {
      throw new RangeError(`${op}: block table at offset ${table} is not 4-byte aligned`);
    }
    const first = Math.floor(p0 / blockSize);
    const end = Math.ceil(p1 / blockSize);
    this.#owner.checkRange(table, end * 4, "table");
    const ids = new Int32Array(this.#owner.memory.buffer, table, end);
    for (let b = first; b < end; b++) {
      const id = ids[b]!;
      if (id < 0) {
        throw new RangeError(`${op}: block table entry ${b} is negative: ${id}`);
      }
      for (const [name, base] of bases) {
        this.#owner.checkRange(
          base + id * blockBytes,
          blockBytes,
          `${name} block ${id} (entry ${b})`,
        );
      }
    }
  }
}

/**
 * The loaded kernels with their memory. Create with {@linkcode loadKernels}; `close()` stops
 * the workers.
 */
export class Kernels extends Ops {
  /** The module's memory (shared when threads are in use); offsets index into it. */
  readonly memory: WebAssembly.Memory;
  /** The SIMD build in use. */
  readonly variant: KernelVariant;
  /** Threads available (main thread + workers). */
  readonly maxThreads: number;
  /** The scalar twins (single thread), for tests and baselines. */
  readonly scalar: KernelOps;
  /** Adaptive thread count fed by `beginStep`/`endStep`. */
  readonly policy: ThreadPolicy;
  #exports: KernelExports;
  #pool: ThreadPool | null;
  #threads: number;
  #arenaBase: number;
  #arenaEnd: number;
  #arenaTop: number;
  #top: number;
  #scratch = new Map<string, { offset: number; bytes: number }>();
  #stepStart = 0;
  #stepThreads = 1;
  #closed = false;
  /** `memory.buffer.byteLength`, which costs ~90 ns per read on a shared memory. */
  #memoryBytes: number;

  /** @internal use {@linkcode loadKernels} */
  constructor(
    init: {
      memory: WebAssembly.Memory;
      exports: KernelExports;
      variant: KernelVariant;
      pool: ThreadPool | null;
      arenaBase: number;
      arenaBytes: number;
    },
  ) {
    super(init.exports, "", null, init.pool);
    this.memory = init.memory;
    this.#memoryBytes = init.memory.buffer.byteLength;
    this.variant = init.variant;
    this.#exports = init.exports;
    this.#pool = init.pool;
    this.maxThreads = init.pool?.size ?? 1;
    this.#threads = this.maxThreads;
    this.policy = new ThreadPolicy(this.maxThreads);
    this.scalar = new Ops(init.exports, "_generic", this, null);
    this.#arenaBase = init.arenaBase;
    this.#arenaTop = init.arenaBase;
    this.#arenaEnd = init.arenaBase + init.arenaBytes;
    this.#top = this.#arenaEnd;
  }

  /** Threads the next matmul or attention uses (1..maxThreads). */
  get threads(): number {
    return this.#threads;
  }

  set threads(n: number) {
    if (!Number.isInteger(n) || n < 1 || n > this.maxThreads) {
      throw new RangeError(
        `Thread count must be an integer in 1..${this.maxThreads}: received ${n}`,
      );
    }
    this.#threads = n;
  }

  /** Bytes of one Q8_0-quantized activation row of length k (depends on the variant). */
  q8RowBytes(k: number): number {
    return this.#exports.q8_0_row_bytes(k);
  }

  /**
   * Allocates `bytes` in the activation arena (16-byte aligned by default).
   *
   * @throws {RangeError} when the arena is full
   */
  alloc(bytes: number, align = 16): number {
    if (!isDim(bytes)) throwBadDim("alloc", { bytes });
    const offset = Math.ceil(this.#arenaTop / align) * align;
    if (offset + bytes > this.#arenaEnd) {
      throw new RangeError(
        `Activation arena is full: ${bytes} bytes requested, ${this.#arenaEnd - this.#arenaTop} ` +
          `of ${this.#arenaEnd - this.#arenaBase} left (raise 'arenaBytes')`,
      );
    }
    this.#arenaTop = offset + bytes;
    return offset;
  }

  /** Current arena top, to pass to `reset` later. */
  mark(): number {
    return this.#arenaTop;
  }

  /** Frees every arena allocation made after `mark` (default: all of them). */
  reset(mark: number = this.#arenaBase): void {
    this.#arenaTop = Math.min(Math.max(mark, this.#arenaBase), this.#arenaTop);
  }

  /**
   * Reserves `bytes` for weights (or any long-lived buffer such as a KV cache) and grows
   * the memory to hold them. Write the tensor into the returned view once; keep `offset`.
   *
   * @throws {RangeError} when the memory would pass the 4 GiB wasm32 ceiling or cannot grow
   */
  allocWeights(bytes: number, align = 16): WeightSlot {
    if (!isDim(bytes)) throwBadDim("allocWeights", { bytes });
    const offset = Math.ceil(this.#top / align) * align;
    this.#grow(offset + bytes, bytes);
    this.#top = offset + bytes;
    return { offset, bytes: new Uint8Array(this.memory.buffer, offset, bytes) };
  }

  /** Bytes reserved so far in the weights region. */
  get weightBytes(): number {
    return this.#top - this.#arenaEnd;
  }

  #grow(end: number, request: number): void {
    if (end > WASM32_MAX_BYTES) {
      throw new RangeError(
        `Model does not fit in wasm32 memory: ${request} more bytes would end at byte ${end}, ` +
          `past the ${WASM32_MAX_BYTES}-byte limit (${this.weightBytes} bytes already reserved)`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    try {
      this.memory.grow(pages);
    } catch (e) {
      throw new RangeError(
        `Cannot grow wasm memory to ${have + pages * PAGE} bytes for ${request} more bytes: ` +
          (e instanceof Error ? e.message : String(e)),
      );
    }
  }

  /** Internal long-lived scratch of at least `bytes`, reused per `name`. */
  scratch(name: string, bytes: number): number {
    const have = this.#scratch.get(name);
    if (have !== undefined && have.bytes >= bytes) return have.offset;
    const size = Math.max(bytes, (have?.bytes ?? 0) * 2, 4096);
    const { offset } = this.allocWeights(size);
    this.#scratch.set(name, { offset, bytes: size });
    return offset;
  }

  /**
   * Checks that a buffer lies inside the memory.
   *
   * @throws {RangeError} when [offset, offset + bytes) is outside the memory
   */
  checkRange(offset: number, bytes: number, name: string): void {
    if (Number.isInteger(offset) && offset >= 0 && offset + bytes <= this.#memoryBytes) return;
    // The memory may have grown behind our back (`memory.grow` is public): look again.
    this.#memoryBytes = this.memory.buffer.byteLength;
    if (!Number.isInteger(offset) || offset < 0 || offset + bytes > this.#memoryBytes) {
      throw new RangeError(
        `Buffer '${name}' at offset ${offset} (${bytes} bytes) is outside the ${this.#memoryBytes}-byte memory`,
      );
    }
  }

  /** f32 view of `length` floats at byte `offset` (fresh after any growth). */
  f32(offset: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, offset, length);
  }

  /** Byte view at `offset`. */
  u8(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, offset, length);
  }

  /** Starts timing a step and applies the policy's thread count to it. */
  beginStep(): void {
    this.#stepThreads = this.policy.next();
    this.#threads = Math.min(this.#stepThreads, this.maxThreads);
    this.#stepStart = performance.now();
  }

  /**
   * Ends the step begun by `beginStep`, feeding its time (less `idleMs` spent waiting on
   * something else) per unit of `work` to the policy.
   */
  endStep(work = 1, idleMs = 0): void {
    this.policy.record(this.#stepThreads, performance.now() - this.#stepStart - idleMs, work);
    this.#threads = this.policy.current;
  }

  /** Sum of `bytes` bytes as u32 words (the memory-read baseline); bytes % 64 == 0. */
  readSum(offset: number, bytes: number): number {
    this.checkRange(offset, bytes, "read");
    return this.#exports.read_sum_u32(offset, bytes) >>> 0;
  }

  /** W (n, k) Q4_0 @ x (m, k) f32 -> y (m, n), quantizing x into internal scratch first. */
  matmulQ4_0(
    w: number,
    x: number,
    y: number,
    m: number,
    n: number,
    k: number,
    layout: Q4Layout = "ggml",
  ): void {
    if (!isDim(m) || !isDim(k)) throwBadDim("matmulQ4_0", { m, k });
    checkQ4k("matmulQ4_0", k);
    const xq = this.scratch("q8", m * this.q8RowBytes(k));
    this.quantizeQ8_0(x, xq, m, k);
    this.matmulQ4_0Q8_0(w, xq, y, m, n, k, layout);
  }

  /**
   * Rewrites a Q4_0 weight W (n, k) from GGML rows to the `"rows8"` layout in place, once,
   * after it was written; pass `"rows8"` to the matmuls from then on.
   *
   * @throws {RangeError} when k is not a multiple of 32 or W is outside the memory
   */
  interleaveQ4_0Rows8(w: number, n: number, k: number): void {
    if (!isDim(n) || !isDim(k)) throwBadDim("interleaveQ4_0Rows8", { n, k });
    checkQ4k("interleaveQ4_0Rows8", k);
    const rowBytes = (k / QK) * Q4_0_BLOCK_BYTES;
    this.checkRange(w, n * rowBytes, "w");
    const tmp = this.scratch("rows8", 8 * rowBytes);
    (this.#exports.interleave_q4_0_rows8 as (...a: number[]) => void)(w, tmp, n, k);
  }

  /** Stops the workers; the memory stays usable from this thread. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#threads = 1;
    this.#pool?.close();
    this.#pool = null;
  }

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function moduleUrl(variant: KernelVariant, shared: boolean): URL {
  return new URL(`./wasm/kernels_${variant}${shared ? "_mt" : ""}.wasm`, import.meta.url);
}

async function compile(variant: KernelVariant, shared: boolean): Promise<WebAssembly.Module> {
  const url = moduleUrl(variant, shared);
  const bytes = url.protocol === "file:"
    ? await Deno.readFile(url)
    : new Uint8Array(await (await fetch(url)).arrayBuffer());
  return await WebAssembly.compile(bytes);
}

function threadsAvailable(): boolean {
  return typeof SharedArrayBuffer === "function" && typeof Worker === "function" &&
    typeof Atomics === "object";
}

/**
 * Functional self-test of a module: a Q4_0 x Q8_0 dot product with a known exact answer.
 * Validation alone is not enough: some engines accept relaxed SIMD and compute it wrongly.
 */
export async function selfTest(module: WebAssembly.Module): Promise<boolean> {
  const memory = new WebAssembly.Memory({ initial: 48, maximum: 65536 });
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const x = instance.exports as unknown as Record<string, Fn>;
  const k = 64;
  const base = 65536 * 32;
  const bytes = new Uint8Array(memory.buffer);
  const xf = new Float32Array(memory.buffer, base, k);
  let expected = 0;
  for (let b = 0; b < k / QK; b++) {
    const blk = base + 1024 + b * Q4_0_BLOCK_BYTES;
    bytes[blk] = 0x00;
    bytes[blk + 1] = 0x3c;
    for (let j = 0; j < 16; j++) {
      const lo = (j * 7 + b) & 15;
      const hi = (j * 11 + 3 * b + 5) & 15;
      bytes[blk + 2 + j] = lo | (hi << 4);
      const a0 = j === 0 ? 127 : ((j * 37 + b * 13) % 255) - 127;
      const a1 = ((j * 53 + b * 29 + 7) % 255) - 127;
      xf[b * QK + j] = a0;
      xf[b * QK + j + 16] = a1;
      expected += (lo - 8) * a0 + (hi - 8) * a1;
    }
  }
  const xq = base + 2048;
  const y = base + 8192;
  x.quantize_q8_0!(base, xq, 1, k);
  x.matmul_q4_0_q8_0!(base + 1024, xq, y, 1, 1, k, 0, 1, 0);
  return new Float32Array(memory.buffer, y, 1)[0] === expected;
}

/**
 * Loads the kernels: picks the SIMD build (relaxed only after a passing functional
 * self-test), creates the memory (shared when threads are available) and starts the
 * worker pool once.
 *
 * @param options thread count, forced variant, arena size
 * @returns the kernels; call `close()` when done
 * @throws {Error} when a forced `"relaxed"` variant fails its self-test
 * @example
 * ```ts
 * import { loadKernels } from "./mod.ts";
 * const kernels = await loadKernels({ threads: 1 });
 * const x = kernels.alloc(4 * 4);
 * kernels.f32(x, 4).set([1, 2, 3, 4]);
 * kernels.softmax(x, x, 1, 4);
 * kernels.close();
 * ```
 */
export async function loadKernels(options: LoadKernelsOptions = {}): Promise<Kernels> {
  const wanted = options.threads ?? globalThis.navigator?.hardwareConcurrency ?? 1;
  if (!isPositiveInteger(wanted)) {
    throw new RangeError(`Option 'threads' must be a positive integer: received ${wanted}`);
  }
  const arenaBytes = options.arenaBytes ?? DEFAULT_ARENA_BYTES;
  if (!Number.isInteger(arenaBytes) || arenaBytes < 0 || arenaBytes > WASM32_MAX_BYTES / 2) {
    throw new RangeError(`Option 'arenaBytes' is out of range: received ${arenaBytes}`);
  }
  const shared = wanted > 1 && threadsAvailable();
  const threads = shared ? wanted : 1;
  const variant = await chooseVariant(options.variant ?? "auto");
  const module = await compile(variant, shared);

  const probe = await WebAssembly.instantiate(module, {
    env: { memory: new WebAssembly.Memory({ initial: 64, maximum: 65536, shared }) },
  }).catch(() => null);
  const heapBase = probe === null
    ? PAGE * 64
    : (probe.exports.__heap_base as WebAssembly.Global).value as number;
  const stacksBase = Math.ceil(heapBase / PAGE) * PAGE;
  const arenaBase = stacksBase + (threads - 1) * WORKER_STACK_BYTES;
  const initialPages = Math.ceil((arenaBase + arenaBytes) / PAGE) + 1;
  const memory = new WebAssembly.Memory({ initial: initialPages, maximum: 65536, shared });
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const exports = instance.exports as unknown as KernelExports;

  let pool: ThreadPool | null = null;
  if (threads > 1) {
    const stackTops = Array.from(
      { length: threads - 1 },
      (_, i) => stacksBase + (i + 1) * WORKER_STACK_BYTES,
    );
    // Workers that cannot start (no permission, no worker support) leave the main thread alone.
    pool = await ThreadPool.start(module, memory, exports, stackTops).catch(() => null);
  }
  return new Kernels({ memory, exports, variant, pool, arenaBase, arenaBytes });
}

let relaxedWorks: Promise<boolean> | undefined;

async function chooseVariant(option: "auto" | KernelVariant): Promise<KernelVariant> {
  if (option === "simd128") return "simd128";
  relaxedWorks ??= compile("relaxed", false).then(selfTest).catch(() => false);
  const ok = await relaxedWorks;
  if (option === "relaxed" && !ok) {
    throw new Error("Relaxed SIMD kernels failed their functional self-test on this engine");
  }
  return ok ? "relaxed" : "simd128";
}
