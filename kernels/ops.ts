/**
 * The kernel calls of one wasm instance ({@link Ops}): each checks its offsets against the
 * memory, then calls the module's export, split over the thread pool when the job is large
 * enough to pay for the hand-off.
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
  OP_QUANTIZE_Q8_0,
  OP_RMS_NORM,
  OP_SILU_GATE,
  OP_STORE_KV_PAGED,
  type Task,
} from "./_job.ts";
import type { ThreadPool } from "./pool.ts";
import type {
  AttentionShape,
  KernelOps,
  KvItem,
  MatmulTarget,
  PagedAttentionCall,
  PagedAttentionShape,
  Q4Layout,
} from "./kernel_types.ts";

/** Values per Q4_0 / Q8_0 block. */
export const QK = 32;
/** Bytes of one Q4_0 block: an f16 scale and 16 bytes of nibbles. */
export const Q4_0_BLOCK_BYTES = 18;
/** Chunks per thread in a split job: a late or descheduled thread leaves its share to the others. */
const CHUNKS_PER_THREAD = 4;
/**
 * Most multiply-adds in one chunk of a matmul job (about 100 us): a prompt's job cut in
 * `CHUNKS_PER_THREAD` per thread left one thread idle for up to a chunk of 0.7-1.2 ms at its end
 * (110M shape, 128-token prompt, two threads: median 739-780 -> 765-788 tokens/s). Decode jobs
 * stay below it.
 */
const CHUNK_MACS = 1 << 22;
/** Rows of the widest Q4_0 tile: a matmul job's chunks hold a multiple of them. */
const GEMM_ROWS = 16;
/** A job with fewer multiply-adds runs on the calling thread: the hand-off would cost more. */
const MIN_SPLIT_MACS = 1 << 18;
/**
 * Decode attention split into runs of kv heads pays from less work (110M shape, two threads:
 * 245-262 against 232-242 tokens/s at 64-128 positions with 2^15; no loss at 8 positions).
 */
const MIN_SPLIT_RUNS = 1 << 15;
/**
 * A row-wise kernel (RMSNorm, the SiLU gate, Q8_0 quantization, KV stores) splits over the
 * threads from this many items: a prompt's rows, not a decode step's (110M shape, 128-token
 * prompt, two threads: they took 14 of its 170 ms on the main thread alone; splitting a decode
 * step's SiLU gate at 8 sequences, 2^14 items, made the step slower).
 */
const MIN_SPLIT_ITEMS = 1 << 16;

/** What the kernel calls need of the loaded kernels: their memory, its checks, scratch space. */
export interface KernelHost {
  /** The module's memory; offsets index into it. */
  readonly memory: WebAssembly.Memory;
  /** Threads the next call uses. */
  readonly threads: number;
  /** Threads available. */
  readonly maxThreads: number;
  /** Throws unless `[offset, offset + bytes)` lies in the memory. */
  checkRange(offset: number, bytes: number, name: string): void;
  /** Bytes of one Q8_0 row of `k` values. */
  q8RowBytes(k: number): number;
  /** The offset of a scratch area of at least `bytes`, kept under `name`. */
  scratch(name: string, bytes: number): number;
  /** True when the scratch area `name` lies at `offset` and holds `bytes` (nothing moves). */
  scratchHolds(name: string, offset: number, bytes: number): boolean;
  /** @internal Where the calls are recorded while a graph step is being recorded, else null. */
  readonly tape: KernelTape | null;
}

/**
 * One kernel call as a graph step made it: an export with its arguments, or a pool job. Its
 * `positions` are the indices of the arguments (of each task of a job) that are positions of
 * the sequence (where a cache append stores its rows, how many cached rows attention reads): a
 * replay of the step at a later position moves them by as much, once `fits` says that the call
 * made there would be the same otherwise.
 */
export type KernelCall =
  & (
    | { readonly name: string; readonly fn: Fn; readonly args: readonly number[] }
    | { readonly job: readonly Task[]; readonly threads: number; readonly pool: ThreadPool }
  )
  & { readonly positions?: readonly number[]; readonly fits?: (by: number) => boolean };

/** How a recorded call moves with the sequence's position (see `KernelCall`). */
type Moves = Pick<KernelCall, "positions" | "fits">;

/** `store_kv_paged`'s arguments that are positions: the first one it stores. */
const STORE_KV_POSITIONS = [9];
/** `attention_paged`'s arguments that are positions: the cached rows, the first query's. */
const ATTENTION_POSITIONS = [11, 12];
/**
 * Cached rows a sequence's attention scores have room for, rounded up to this: a recorded
 * call stays the same until one of its sequences outgrows its room, and a replay plan is left
 * then (with eight sequences decoding, about once in 32 steps).
 */
const SCORE_SLOT_ROWS = 256;

/**
 * What a recorded stretch of a run did in the kernels' memory: the calls it made, the run
 * arena's allocations (offset, bytes pairs) and how often TypeScript wrote into the memory
 * itself (`Kernels.noteHostWrite`), which calls alone cannot repeat.
 */
export interface KernelTape {
  readonly calls: KernelCall[];
  readonly allocs: number[];
  hostWrites: number;
}

/** A kernel export: numbers in, a number out. */
export type Fn = (...args: number[]) => number;

/** True for an integer above 0. */
export function isPositiveInteger(v: number): boolean {
  return Number.isInteger(v) && v > 0;
}

/** True for a dim: an integer of 0 or more. */
export function isDim(v: number): boolean {
  return Number.isInteger(v) && v >= 0;
}

/** Names the first entry of `dims` that is not a dim; the caller built `dims` only after a check failed. */
export function throwBadDim(op: string, dims: Record<string, number>): never {
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

/** Throws unless `k` is a whole number of Q4_0 blocks. */
export function checkQ4k(op: string, k: number): void {
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
  "add_f32",
  "softmax_f32",
  "weigh_logits",
  "attention_f32",
  "attention_paged",
  "store_kv_paged",
] as const;
type KernelName = typeof KERNEL_NAMES[number];
type KernelFns = Record<KernelName, Fn>;

/** Runs kernels of one wasm instance, optionally splitting matmuls over a thread pool. */
export class Ops implements KernelOps {
  #fns: KernelFns;
  #owner: KernelHost;
  #pool: ThreadPool | null;
  readonly #suffix: string;
  /** Query rows `attention_paged` computes together (its scores hold that many rows). */
  #pagedRows: number;

  /** `owner` null: this is the `Kernels` itself (its SIMD ops). */
  constructor(
    exports: KernelExports,
    suffix: string,
    owner: KernelHost | null,
    pool: ThreadPool | null,
  ) {
    const x = exports as unknown as Record<string, Fn>;
    this.#fns = Object.fromEntries(KERNEL_NAMES.map((n) => [n, x[n + suffix]!])) as KernelFns;
    this.#owner = owner ?? (this as unknown as KernelHost);
    this.#pool = pool;
    this.#suffix = suffix;
    this.#pagedRows = exports.attention_paged_rows();
  }

  #fn(name: KernelName, moves?: Moves): Fn {
    const fn = this.#fns[name];
    const tape = this.#owner.tape;
    if (tape === null) return fn;
    const named = name + this.#suffix;
    return (...args: number[]) => {
      tape.calls.push({ name: named, fn, args, ...moves });
      return fn(...args);
    };
  }

  #job(tasks: readonly Task[], threads: number, moves?: Moves): void {
    this.#owner.tape?.calls.push({ job: tasks, threads, pool: this.#pool!, ...moves });
    this.#pool!.run(tasks, threads);
  }

  #parts(): number {
    return this.#pool === null ? 1 : this.#owner.threads;
  }

  quantizeQ8_0(x: number, xq: number, m: number, k: number): void {
    if (!isDim(m) || !isDim(k)) throwBadDim("quantizeQ8_0", { m, k });
    checkQ4k("quantizeQ8_0", k);
    this.#owner.checkRange(x, m * k * 4, "x");
    const rowBytes = this.#owner.q8RowBytes(k);
    this.#owner.checkRange(xq, m * rowBytes, "xq");
    if (!this.#splitRows(OP_QUANTIZE_Q8_0, m, k, [x, xq, m, k, rowBytes])) {
      this.#fn("quantize_q8_0")(x, xq, m, k);
    }
  }

  /**
   * Runs a row-wise kernel's `rows` rows of `width` items over the threads, chunks a multiple
   * of `align` rows, when there are enough items to pay for the hand-off; false when it is the
   * caller's to run.
   */
  #splitRows(
    op: number,
    rows: number,
    width: number,
    args: readonly number[],
    { floats, align = 1 }: { floats?: readonly number[]; align?: number } = {},
  ): boolean {
    const threads = Math.min(this.#parts(), Math.ceil(rows / align));
    if (threads < 2 || rows * width < MIN_SPLIT_ITEMS) return false;
    const size = Math.ceil(rows / (threads * CHUNKS_PER_THREAD) / align) * align;
    this.#job([{ op, count: rows, size, args, ...(floats ? { floats } : {}) }], threads);
    return true;
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
      const chunks = Math.max(threads * CHUNKS_PER_THREAD, Math.ceil((rows * k * m) / CHUNK_MACS));
      const size = Math.max(GEMM_ROWS, Math.ceil(rows / chunks / GEMM_ROWS) * GEMM_ROWS);
      const tasks = targets.map((t, i): Task => ({
        op,
        count: t.n,
        size,
        args: [t.w, x, t.y, m, t.n, k, rows8[i]!],
      }));
      this.#job(tasks, threads);
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
    if (!this.#splitRows(OP_RMS_NORM, m, d, [x, w, y, m, d, eps], { floats: [5] })) {
      this.#fn("rms_norm_f32")(x, w, y, m, d, eps);
    }
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
    // Chunks of whole cache lines of items.
    if (!this.#splitRows(OP_SILU_GATE, len, 1, [a, b, y, len], { align: 16 })) {
      this.#fn("silu_gate_f32")(a, b, y, len);
    }
  }

  add(a: number, b: number, y: number, len: number): void {
    if (!isDim(len)) throwBadDim("add", { len });
    this.#owner.checkRange(a, len * 4, "a");
    this.#owner.checkRange(b, len * 4, "b");
    this.#owner.checkRange(y, len * 4, "y");
    // One thread: over two, a prompt's add (98,304 items) saved 3-7 us of 17, lost in a prompt.
    this.#fn("add_f32")(a, b, y, len);
  }

  softmax(x: number, y: number, m: number, n: number): void {
    if (!isDim(m) || !isDim(n)) throwBadDim("softmax", { m, n });
    this.#owner.checkRange(x, m * n * 4, "x");
    this.#owner.checkRange(y, m * n * 4, "y");
    this.#fn("softmax_f32")(x, y, m, n);
  }

  weighLogits(x: number, w: number, n: number, max: number, scale: number, total: number): void {
    if (!isDim(n)) throwBadDim("weighLogits", { n });
    this.#owner.checkRange(x, n * 4, "x");
    this.#owner.checkRange(w, n * 4, "w");
    this.#owner.checkRange(total, 8, "total");
    if (total % 8 !== 0) {
      throw new RangeError(`weighLogits: 'total' must be 8-byte aligned: received ${total}`);
    }
    this.#fn("weigh_logits")(x, w, n, max, scale, total);
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
      this.#job([{ ...task, floats: [12] }], threads);
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
    this.attentionPagedMany([{ q, out, kBase, vBase, table, shape: s }]);
  }

  attentionPagedMany(calls: readonly PagedAttentionCall[]): void {
    const tasks = calls.map((c) => this.#pagedTask(c));
    const heads = tasks.reduce((n, t) => n + t.count, 0);
    const split = this.#pagedSplit(calls, tasks);
    // The same calls made again later read more cached rows: they are the same calls as long
    // as they split the same and their scores still fit (`holds`, given the moved tasks).
    const moves = (holds: (moved: readonly { scoreBytes: number }[]) => boolean) => {
      if (this.#owner.tape === null) return undefined;
      const fits = (by: number) => {
        const moved = tasks.map((t, i) => ({ ...t, ...this.#pagedCosts(calls[i]!.shape, by) }));
        return this.#pagedSplit(calls, moved) === split && holds(moved);
      };
      return { positions: ATTENTION_POSITIONS, fits } satisfies Moves;
    };
    if (split > 1) {
      // Chunks of several heads (a chunk reads each block of the regions once for its heads),
      // about two per thread over the whole job; each call has scores of its own, in a slot
      // with room for more cached rows, so that the same job a few positions later finds them
      // where they were.
      const size = Math.ceil(heads / (split * 2));
      const streaming = this.#streaming(calls);
      for (let at = 0; at < tasks.length; at += MAX_TASKS) {
        const group = tasks.slice(at, at + MAX_TASKS);
        const slots = group.map((_, i) => this.#scoreSlot(calls[at + i]!.shape));
        const total = slots.reduce((n, b) => n + b, 0);
        const first = this.#owner.scratch("scores", total);
        let scores = first;
        const job = group.map((t, i): Task => {
          const args = [...t.args];
          args[5] = scores;
          scores += slots[i]!;
          const chunk = streaming ? t.runQueryHeads : size;
          return { op: OP_ATTENTION_PAGED, count: t.count, size: chunk, args, floats: [13] };
        });
        const holds = (moved: readonly { scoreBytes: number }[]) =>
          this.#owner.scratchHolds("scores", first, total) &&
          slots.every((bytes, i) => moved[at + i]!.scoreBytes <= bytes);
        this.#job(job, split, moves(holds));
      }
      return;
    }
    const slot = Math.max(...calls.map((c) => this.#scoreSlot(c.shape)));
    const scores = this.#owner.scratch("scores", slot);
    const sequential = moves((moved) =>
      this.#owner.scratchHolds("scores", scores, Math.max(...moved.map((t) => t.scoreBytes)))
    );
    for (const t of tasks) {
      const args = [...t.args];
      args[5] = scores;
      this.#fn("attention_paged", sequential)(...args, 0, t.count);
    }
  }

  /** Score bytes of a call of shape `s` with room for up to `SCORE_SLOT_ROWS` more cached rows. */
  #scoreSlot(s: PagedAttentionShape): number {
    const rows = Math.ceil((s.kvLen + 1) / SCORE_SLOT_ROWS) * SCORE_SLOT_ROWS;
    return this.#pagedCosts(s, rows - s.kvLen).scoreBytes;
  }

  /**
   * Where each cached row serves one query row of one head, the time goes into reading the
   * blocks, front to back. Chunks of heads would each read a slice of every block of a run of
   * heads, which the hardware prefetcher does not follow: such a call goes to the threads a
   * run at a time (whole, when it has one run).
   */
  #streaming(calls: readonly PagedAttentionCall[]): boolean {
    return calls.every(({ shape: s }) => Math.min(s.m, this.#pagedRows) * s.nHeads === s.nKvHeads);
  }

  /** Threads a job of `tasks` runs on, or 1 when the calls run on the calling thread. */
  #pagedSplit(
    calls: readonly PagedAttentionCall[],
    tasks: readonly { count: number; runQueryHeads: number; macs: number }[],
  ): number {
    const streaming = this.#streaming(calls);
    const heads = tasks.reduce((n, t) => n + t.count, 0);
    const macs = tasks.reduce((n, t) => n + t.macs, 0);
    const runs = tasks.reduce((n, t) => n + Math.ceil(t.count / t.runQueryHeads), 0);
    const threads = Math.min(this.#parts(), streaming ? runs : heads);
    return threads > 1 && macs >= (streaming ? MIN_SPLIT_RUNS : MIN_SPLIT_MACS) ? threads : 1;
  }

  /** Multiply-adds and score bytes of a call of shape `s` over `by` more cached rows. */
  #pagedCosts(s: PagedAttentionShape, by = 0): { macs: number; scoreBytes: number } {
    const kvLen = s.kvLen + by;
    return {
      macs: s.m * s.nHeads * kvLen * s.headDim * 2,
      // One row of scores per head (and per thread, however few heads a call has).
      scoreBytes: Math.min(s.m, this.#pagedRows) * Math.max(s.nHeads, this.#owner.maxThreads) *
        Math.max(kvLen, 1) * 4,
    };
  }

  /** One `attention_paged` call checked, as a task over its heads (scores set by the caller). */
  #pagedTask(call: PagedAttentionCall): {
    args: number[];
    count: number;
    /** Query heads that read one run of kv heads. */
    runQueryHeads: number;
    macs: number;
    scoreBytes: number;
  } {
    const { q, out, kBase, vBase, table, shape: s } = call;
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
    const { runHeads = 0, runStride = 0, window = 0 } = s;
    if (!isDim(runHeads) || !isDim(runStride) || !isDim(window)) {
      throwBadDim(op, { runHeads, runStride, window });
    }
    const layout = runLayout(nKvHeads, blockSize * headDim * item, runHeads, runStride);
    this.#checkBlocks(op, table, blockSize, 0, kvLen, [["kBase", kBase], ["vBase", vBase]], layout);
    this.#owner.checkRange(q, m * nHeads * headDim * 4, "q");
    this.#owner.checkRange(out, m * nHeads * headDim * 4, "out");
    const f16 = s.item === "f16" ? 1 : 0;
    return {
      // (q, out, kBase, vBase, table, scores, m, nHeads, nKvHeads, headDim, blockSize, kvLen,
      // qPos0, scale, f16, runHeads, runStride, window): see `runChunk` in `_job.ts`.
      args: [
        q,
        out,
        kBase,
        vBase,
        table,
        0,
        m,
        nHeads,
        nKvHeads,
        headDim,
        blockSize,
        kvLen,
        qPos0,
        s.scale,
        f16,
        runHeads,
        runStride,
        window,
      ],
      count: nHeads,
      runQueryHeads: layout.perRun * (nHeads / nKvHeads),
      ...this.#pagedCosts(s),
    };
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
    kvRunHeads = 0,
    kvRunStride = 0,
  ): void {
    const op = "storeKvPaged";
    if (
      !isDim(srcHeadStride) || !isDim(srcRowStride) || !isDim(nKvHeads) || !isDim(headDim) ||
      !isDim(pos0) || !isDim(count) || !isDim(kvRunHeads) || !isDim(kvRunStride)
    ) {
      const dims = { srcHeadStride, srcRowStride, nKvHeads, headDim, pos0, count };
      throwBadDim(op, { ...dims, kvRunHeads, kvRunStride });
    }
    const headBytes = blockSize * headDim * itemBytes(op, itemType);
    if (count === 0 || nKvHeads === 0) return;
    const layout = runLayout(nKvHeads, headBytes, kvRunHeads, kvRunStride);
    this.#checkBlocks(op, table, blockSize, pos0, pos0 + count, [["base", base]], layout);
    const last = (nKvHeads - 1) * srcHeadStride + (count - 1) * srcRowStride + headDim;
    this.#owner.checkRange(src, last * 4, "src");
    const args = [
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
      kvRunHeads,
      kvRunStride,
    ];
    // A prompt's positions split over the threads: each writes whole rows of its own.
    if (!this.#splitRows(OP_STORE_KV_PAGED, count, nKvHeads * headDim, args)) {
      this.#fn("store_kv_paged", { positions: STORE_KV_POSITIONS })(...args);
    }
  }

  /**
   * Checks the block table entries of positions p0..p1 and that each named block lies in
   * the memory for every region in `bases` (every run's rows of it), within its run: the
   * largest entry lies furthest, so its range stands for them all.
   */
  #checkBlocks(
    op: string,
    table: number,
    blockSize: number,
    p0: number,
    p1: number,
    bases: readonly [string, number][],
    { blockStride, span, runStride, runs }: RunLayout,
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
    let top = first;
    for (let b = first; b < end; b++) {
      const id = ids[b]!;
      if (id < 0) {
        throw new RangeError(`${op}: block table entry ${b} is negative: ${id}`);
      }
      if (id > ids[top]!) top = b;
    }
    const id = ids[top]!;
    if (runs > 1 && (id + 1) * blockStride > runStride) {
      throw new RangeError(
        `${op}: block ${id} (entry ${top}) runs past its run's ${runStride} bytes of blocks`,
      );
    }
    for (const [name, base] of bases) {
      this.#owner.checkRange(base + id * blockStride, span, `${name} block ${id} (entry ${top})`);
    }
  }
}

/** Where a paged region's blocks lie (see `PagedAttentionShape`). */
interface RunLayout {
  /** Kv heads per run. */
  perRun: number;
  /** Runs of kv heads. */
  runs: number;
  /** Bytes from block b to block b + 1 of a run. */
  blockStride: number;
  /** Bytes from a run's first block to the next run's. */
  runStride: number;
  /** Bytes from the start of a block of the first run to the end of the last run's. */
  span: number;
}

function runLayout(nKv: number, headBytes: number, runHeads: number, runStride: number): RunLayout {
  const perRun = runHeads === 0 || runHeads > nKv ? nKv : runHeads;
  const runs = Math.ceil(nKv / perRun);
  const blockStride = perRun * headBytes;
  const last = nKv - 1;
  const span = Math.floor(last / perRun) * runStride + (last % perRun) * headBytes + headBytes;
  return { perRun, runs, blockStride, runStride, span };
}
