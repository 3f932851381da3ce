/**
 * Fused RMSNorm: y = x / sqrt(mean(x², last axis) + eps) [* weight], the subgraph
 * `sqr -> mean_reduce -> add eps -> rsqrt -> mul [-> mul weight]`.
 */
import { type Tensor, tensor } from "../tensor/tensor.ts";
import { ConstantSlots, f32Items, inArena } from "./fused.ts";
import type { EvalContext } from "./op.ts";

/** An RMSNorm over the last axis with a constant weight (d,) or none. */
export class FusedRmsNorm {
  readonly eps: number;
  readonly weight: Float32Array | null;
  readonly #slots: ConstantSlots | null;

  constructor(eps: number, weight: Float32Array | null) {
    this.eps = Math.fround(eps);
    this.weight = weight;
    this.#slots = weight ? new ConstantSlots(weight) : null;
  }

  /** x (..., d) -> (..., d). */
  eval(x: Tensor, ctx: EvalContext): Tensor {
    const d = x.shape[x.shape.length - 1]!;
    const xs = f32Items(x); // (m, d)
    const m = d === 0 ? 0 : xs.length / d;
    if (this.weight && this.weight.length !== d) {
      throw new RangeError(`RMSNorm weight has ${this.weight.length} items for rows of ${d}`);
    }
    const k = ctx.kernels;
    if (k && m > 0) {
      const w = this.#slots ? this.#slots.offset(k) : 0;
      const y = inArena(
        k,
        ctx.arena,
        [xs],
        xs.length,
        ([xo], yo) => k.rmsNorm(xo!, w, yo, m, d, this.eps),
      );
      return tensor("f32", x.shape, y);
    }
    return tensor("f32", x.shape, rmsNormTs(xs, this.weight, m, d, this.eps));
  }
}

/** The TS path, rounding to f32 where the unfused subgraph does. */
export function rmsNormTs(
  xs: Float32Array,
  weight: Float32Array | null,
  m: number,
  d: number,
  eps: number,
): Float32Array {
  const f = Math.fround;
  const y = new Float32Array(m * d); // (m, d)
  for (let r = 0; r < m; r++) {
    const o = r * d;
    let sum = 0;
    for (let i = 0; i < d; i++) sum += f(xs[o + i]! * xs[o + i]!);
    const inv = f(1 / Math.sqrt(f(f(sum / d) + eps)));
    if (weight) { for (let i = 0; i < d; i++) y[o + i] = f(xs[o + i]! * inv) * weight[i]!; }
    else for (let i = 0; i < d; i++) y[o + i] = xs[o + i]! * inv;
  }
  return y;
}
