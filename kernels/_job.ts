/** Layout of the control block shared by the main thread and the workers, and the row split. */

/** The wasm exports the kernels use, as the module declares them. */
export interface KernelExports {
  readonly q8_0_row_bytes: (k: number) => number;
  readonly read_sum_u32: (p: number, bytes: number) => number;
  readonly [name: string]: unknown;
}

export type MatmulFn = (
  w: number,
  x: number,
  y: number,
  m: number,
  n: number,
  k: number,
  r0: number,
  r1: number,
  rows8?: number,
) => void;

export type AttentionFn = (
  q: number,
  kCache: number,
  vCache: number,
  out: number,
  scores: number,
  m: number,
  nHeads: number,
  nKvHeads: number,
  headDim: number,
  capacity: number,
  kvLen: number,
  qPos0: number,
  scale: number,
  h0: number,
  h1: number,
) => void;

/** Int32 slots of the control SharedArrayBuffer. */
export const CTL_GENERATION = 0;
export const CTL_DONE = 1;
export const CTL_OP = 2;
export const CTL_CHUNKS = 3;
export const CTL_CHUNK_SIZE = 4;
export const CTL_ARGS = 5;
/** Threads (main thread = 0) with an index below this take part in the job. */
export const CTL_THREADS = 23;
/** Float32 slot for the one float argument (attention scale). */
export const CTL_FLOAT = 24;
/** BigInt64 slot: (generation << 32) | next unclaimed chunk. */
export const CTL_CLAIM = 13;
export const CTL_BYTES = 128;

export const OP_STOP = 0;
export const OP_MATMUL_Q4_0 = 1;
export const OP_MATMUL_F32 = 2;
export const OP_MATMUL_F16 = 3;
export const OP_ATTENTION = 4;

/** The SIMD export each matmul op runs; its scalar twin is the same name + `_generic`. */
export const MATMUL_EXPORTS = {
  [OP_MATMUL_Q4_0]: "matmul_q4_0_q8_0",
  [OP_MATMUL_F32]: "matmul_f32_f32",
  [OP_MATMUL_F16]: "matmul_f16_f32",
} as const;
export type MatmulOp = keyof typeof MATMUL_EXPORTS;

/** Typed views of the control block. */
export class Control {
  readonly i32: Int32Array;
  readonly f32: Float32Array;
  readonly claim: BigInt64Array;

  constructor(buffer: SharedArrayBuffer) {
    this.i32 = new Int32Array(buffer);
    this.f32 = new Float32Array(buffer);
    this.claim = new BigInt64Array(buffer);
  }
}

/**
 * Claims chunks of job `gen` one at a time and runs them until none is left. A chunk is
 * claimed by compare-and-swap on (generation, next), so a thread that wakes late never
 * takes a chunk of a later job; the job's arguments are read only after a claim succeeds.
 */
export function runChunks(exports: KernelExports, c: Control, gen: number, thread: number): void {
  const tag = BigInt(gen);
  if (thread >= c.i32[CTL_THREADS]!) return;
  for (;;) {
    const v = Atomics.load(c.claim, CTL_CLAIM);
    if (v >> 32n !== tag) return;
    const next = Number(v & 0xffffffffn);
    if (next >= c.i32[CTL_CHUNKS]!) return;
    if (Atomics.compareExchange(c.claim, CTL_CLAIM, v, v + 1n) !== v) continue;
    runChunk(exports, c, next, thread);
    Atomics.add(c.i32, CTL_DONE, 1);
  }
}

function runChunk(exports: KernelExports, c: Control, chunk: number, thread: number): void {
  const ctl = c.i32;
  const op = ctl[CTL_OP]!;
  const size = ctl[CTL_CHUNK_SIZE]!;
  const a = (i: number): number => ctl[CTL_ARGS + i]!;
  if (op === OP_ATTENTION) {
    const nHeads = a(6);
    const kvLen = a(10);
    const h0 = chunk * size;
    const scores = a(4) + thread * Math.max(kvLen, 1) * 4;
    (exports.attention_f32 as AttentionFn)(
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
      kvLen,
      a(11),
      c.f32[CTL_FLOAT]!,
      h0,
      Math.min(nHeads, h0 + size),
    );
    return;
  }
  if (!(op in MATMUL_EXPORTS)) return;
  const name = MATMUL_EXPORTS[op as MatmulOp];
  const n = a(4);
  const r0 = chunk * size;
  (exports[name] as MatmulFn)(a(0), a(1), a(2), a(3), n, a(5), r0, Math.min(n, r0 + size), a(6));
}
