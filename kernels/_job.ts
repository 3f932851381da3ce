/**
 * The job the main thread and the workers share: a list of tasks (kernel calls over row or
 * head ranges), cut into chunks that every thread claims one at a time.
 */

/** The wasm exports the kernels use, as the module declares them. */
export interface KernelExports {
  readonly q8_0_row_bytes: (k: number) => number;
  readonly attention_paged_rows: () => number;
  readonly read_sum_u32: (p: number, bytes: number) => number;
  readonly dot_peak_i8: (p: number, bytes: number, rounds: number) => number;
  readonly [name: string]: unknown;
}

/** Int32 slots of the control SharedArrayBuffer. */
export const CTL_GENERATION = 0;
/** Chunks finished in the current job. */
export const CTL_DONE = 1;
/** (generation & 0xffff) << 16 | next unclaimed chunk. */
export const CTL_CLAIM = 2;
export const CTL_CHUNKS = 3;
/** Threads (main thread = 0) with an index below this take part in the job. */
export const CTL_THREADS = 4;
/** 1 while the main thread sleeps in Atomics.wait on CTL_DONE: finishing a chunk then notifies. */
export const CTL_MAIN_WAITING = 5;
/** Workers asleep in Atomics.wait on CTL_GENERATION: a new job then notifies. */
export const CTL_SLEEPERS = 6;
/** 1 once the pool closes: workers leave at the next generation. */
export const CTL_STOP = 7;
export const CTL_TASKS = 8;
const CTL_TASK_TABLE = 10;
/** Per task: op, first chunk, rows (or heads) per chunk, then the kernel's arguments. */
const TASK_INTS = 21;
const TASK_OP = 0;
const TASK_FIRST = 1;
const TASK_SIZE = 2;
const TASK_ARGS = 3;
/** Most tasks in one job. */
export const MAX_TASKS = 8;
/** Most arguments of one task. */
const MAX_TASK_ARGS = TASK_INTS - TASK_ARGS;
export const CTL_BYTES = (CTL_TASK_TABLE + MAX_TASKS * TASK_INTS) * 4;
/** Most chunks in one job: the claim word keeps 16 bits for the chunk index. */
export const MAX_CHUNKS = 0xffff;

export const OP_MATMUL_Q4_0 = 1;
export const OP_MATMUL_F32 = 2;
export const OP_MATMUL_F16 = 3;
export const OP_ATTENTION = 4;
export const OP_ATTENTION_PAGED = 5;
/** Row-wise kernels: a chunk runs the kernel on its rows (or items), offsets moved to them. */
export const OP_QUANTIZE_Q8_0 = 6;
export const OP_RMS_NORM = 7;
export const OP_SILU_GATE = 8;
export const OP_STORE_KV_PAGED = 9;

/**
 * A row-wise kernel as a task: its export, taking the first `arity` task arguments (`float`
 * read as f32), of which `count` is the rows (or items) and each of `moves` an offset that
 * moves by `step` per row; a chunk passes its own rows, its offsets moved to its first.
 */
interface RowOp {
  readonly name: string;
  readonly arity: number;
  readonly count: number;
  readonly moves: readonly (readonly [number, (a: (i: number) => number) => number])[];
  readonly float?: number;
}

const ROW_OPS: Readonly<Record<number, RowOp>> = {
  // (x, xq, m, k | rowBytes)
  [OP_QUANTIZE_Q8_0]: {
    name: "quantize_q8_0",
    arity: 4,
    count: 2,
    moves: [[0, (a) => a(3) * 4], [1, (a) => a(4)]],
  },
  // (x, w, y, m, d, eps)
  [OP_RMS_NORM]: {
    name: "rms_norm_f32",
    arity: 6,
    count: 3,
    moves: [[0, (a) => a(4) * 4], [2, (a) => a(4) * 4]],
    float: 5,
  },
  // (a, b, y, len)
  [OP_SILU_GATE]: {
    name: "silu_gate_f32",
    arity: 4,
    count: 3,
    moves: [0, 1, 2].map((i) => [i, () => 4]),
  },
  // (src, headStride, rowStride, base, table, blockSize, f16, nKvHeads, headDim, pos0, count,
  // runHeads, runStride)
  [OP_STORE_KV_PAGED]: {
    name: "store_kv_paged",
    arity: 13,
    count: 10,
    moves: [[0, (a) => a(2) * 4], [9, () => 1]],
  },
};

/** The SIMD export each matmul op runs; its scalar twin is the same name + `_generic`. */
export const MATMUL_EXPORTS = {
  [OP_MATMUL_Q4_0]: "matmul_q4_0_q8_0",
  [OP_MATMUL_F32]: "matmul_f32_f32",
  [OP_MATMUL_F16]: "matmul_f16_f32",
} as const;
export type MatmulOp = keyof typeof MATMUL_EXPORTS;

/**
 * One kernel call of a job: `args` in the kernel's order without its range, which each chunk
 * supplies (rows r0..r1 of a matmul, heads h0..h1 of attention). Float arguments are stored
 * as f32 bits at the indices in `floats`.
 */
export interface Task {
  op: number;
  /** Rows (or heads) the task covers. */
  count: number;
  /** Rows (or heads) per chunk. */
  size: number;
  args: readonly number[];
  floats?: readonly number[];
}

/** Typed views of the control block. */
export class Control {
  readonly i32: Int32Array;
  readonly f32: Float32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.i32 = new Int32Array(buffer);
    this.f32 = new Float32Array(buffer);
  }

  /** Writes the tasks of the next job and returns its chunk count. */
  writeTasks(tasks: readonly Task[]): number {
    const { i32, f32 } = this;
    let chunks = 0;
    if (tasks.length > MAX_TASKS) {
      throw new RangeError(`A kernel job has ${tasks.length} tasks, more than ${MAX_TASKS}`);
    }
    for (const [t, task] of tasks.entries()) {
      if (task.args.length > MAX_TASK_ARGS) {
        throw new RangeError(
          `A kernel task has ${task.args.length} arguments, more than ${MAX_TASK_ARGS}`,
        );
      }
      const base = CTL_TASK_TABLE + t * TASK_INTS;
      i32[base + TASK_OP] = task.op;
      i32[base + TASK_FIRST] = chunks;
      i32[base + TASK_SIZE] = task.size;
      for (let i = 0; i < task.args.length; i++) i32[base + TASK_ARGS + i] = task.args[i]! | 0;
      for (const i of task.floats ?? []) f32[base + TASK_ARGS + i] = task.args[i]!;
      chunks += Math.ceil(task.count / task.size);
    }
    i32[CTL_TASKS] = tasks.length;
    return chunks;
  }
}

/**
 * Claims chunks of job `gen` one at a time and runs them until none is left. A chunk is
 * claimed by compare-and-swap on (generation, next): a thread that wakes late fails its
 * swap instead of taking a chunk of a later job, and even a swap that succeeds after the
 * 16-bit generation wrapped claims a chunk of the job in progress, whose task it reads only
 * after the claim.
 */
export function runChunks(exports: KernelExports, c: Control, gen: number, thread: number): void {
  const ctl = c.i32;
  if (thread >= ctl[CTL_THREADS]!) return;
  const tag = gen & 0xffff;
  for (;;) {
    const v = Atomics.load(ctl, CTL_CLAIM);
    if (v >>> 16 !== tag) return;
    const next = v & 0xffff;
    if (next >= ctl[CTL_CHUNKS]!) return;
    if (Atomics.compareExchange(ctl, CTL_CLAIM, v, v + 1) !== v) continue;
    runChunk(exports, c, next, thread);
    Atomics.add(ctl, CTL_DONE, 1);
    if (Atomics.load(ctl, CTL_MAIN_WAITING) !== 0) Atomics.notify(ctl, CTL_DONE);
  }
}

function runChunk(exports: KernelExports, c: Control, chunk: number, thread: number): void {
  const ctl = c.i32;
  let base = CTL_TASK_TABLE;
  const last = CTL_TASK_TABLE + (ctl[CTL_TASKS]! - 1) * TASK_INTS;
  while (base < last && ctl[base + TASK_INTS + TASK_FIRST]! <= chunk) base += TASK_INTS;
  const op = ctl[base + TASK_OP]!;
  const size = ctl[base + TASK_SIZE]!;
  const r0 = (chunk - ctl[base + TASK_FIRST]!) * size;
  const a = (i: number): number => ctl[base + TASK_ARGS + i]!;
  if (op === OP_ATTENTION) {
    // (q, k, v, out, scores, m, nHeads, nKvHeads, headDim, capacity, kvLen, qPos0, scale)
    const nHeads = a(6);
    const scores = a(4) + thread * Math.max(a(10), 1) * 4;
    (exports.attention_f32 as (...args: number[]) => void)(
      a(0),
      a(1),
      a(2),
      a(3),
      scores,
      a(5),
      nHeads,
      a(7),
      a(8),
      a(9),
      a(10),
      a(11),
      c.f32[base + TASK_ARGS + 12]!,
      r0,
      Math.min(nHeads, r0 + size),
    );
    return;
  }
  if (op === OP_ATTENTION_PAGED) {
    // (q, out, kBase, vBase, table, scores (nHeads * kvLen: one row per head), m, nHeads,
    // nKvHeads, headDim, blockSize, kvLen, qPos0, scale, f16, runHeads, runStride, window)
    const nHeads = a(7);
    (exports.attention_paged as (...args: number[]) => void)(
      a(0),
      a(1),
      a(2),
      a(3),
      a(4),
      a(5),
      a(6),
      nHeads,
      a(8),
      a(9),
      a(10),
      a(11),
      a(12),
      c.f32[base + TASK_ARGS + 13]!,
      a(14),
      a(15),
      a(16),
      a(17),
      r0,
      Math.min(nHeads, r0 + size),
    );
    return;
  }
  const rowOp = ROW_OPS[op];
  if (rowOp) {
    const args: number[] = [];
    for (let i = 0; i < rowOp.arity; i++) {
      args.push(i === rowOp.float ? c.f32[base + TASK_ARGS + i]! : a(i));
    }
    for (const [i, step] of rowOp.moves) args[i]! += r0 * step(a);
    args[rowOp.count] = Math.min(a(rowOp.count), r0 + size) - r0;
    (exports[rowOp.name] as (...args: number[]) => void)(...args);
    return;
  }
  if (!(op in MATMUL_EXPORTS)) return;
  // (w, x, y, m, n, k, rows8)
  const n = a(4);
  (exports[MATMUL_EXPORTS[op as MatmulOp]] as (...args: number[]) => void)(
    a(0),
    a(1),
    a(2),
    a(3),
    n,
    a(5),
    r0,
    Math.min(n, r0 + size),
    a(6),
  );
}
