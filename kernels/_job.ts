/** Layout of the control block shared by the main thread and the workers, and the row split. */

/** The wasm exports the kernels use, as the module declares them. */
export interface KernelExports {
  readonly kernels_relaxed: () => number;
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
export const CTL_PARTS = 3;
export const CTL_ARGS = 4;
/** Float32 slot for the one float argument (attention scale). */
export const CTL_FLOAT = 24;
export const CTL_BYTES = 128;

export const OP_STOP = 0;
export const OP_MATMUL_Q4_0 = 1;
export const OP_MATMUL_F32 = 2;
export const OP_MATMUL_F16 = 3;
export const OP_ATTENTION = 4;

const MATMUL_EXPORTS: Record<number, string> = {
  [OP_MATMUL_Q4_0]: "matmul_q4_0_q8_0",
  [OP_MATMUL_F32]: "matmul_f32_f32",
  [OP_MATMUL_F16]: "matmul_f16_f32",
};

/** Rows [r0, r1) of share `index` out of `parts`, in chunks that are multiples of `align`. */
export function shareOf(
  total: number,
  parts: number,
  index: number,
  align: number,
): [number, number] {
  const chunk = Math.ceil(Math.ceil(total / parts) / align) * align;
  const r0 = Math.min(total, index * chunk);
  return [r0, Math.min(total, r0 + chunk)];
}

/** Runs share `index` of the job currently described in the control block. */
export function runShare(exports: KernelExports, ctl: Int32Array, index: number): void {
  const op = ctl[CTL_OP]!;
  const parts = ctl[CTL_PARTS]!;
  const a = (i: number): number => ctl[CTL_ARGS + i]!;
  if (op === OP_ATTENTION) {
    const scale = new Float32Array(ctl.buffer, CTL_FLOAT * 4, 1)[0]!;
    const nHeads = a(6);
    const kvLen = a(9);
    const [h0, h1] = shareOf(nHeads, parts, index, 1);
    if (h0 >= h1) return;
    const scores = a(4) + index * Math.max(kvLen, 1) * 4;
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
      a(10),
      kvLen,
      a(11),
      scale,
      h0,
      h1,
    );
    return;
  }
  const name = MATMUL_EXPORTS[op];
  if (name === undefined) return;
  const n = a(4);
  const [r0, r1] = shareOf(n, parts, index, 4);
  if (r0 >= r1) return;
  (exports[name] as MatmulFn)(a(0), a(1), a(2), a(3), n, a(5), r0, r1);
}
