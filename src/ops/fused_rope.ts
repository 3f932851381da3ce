/**
 * Fused rotate-half RoPE: y = x * cos + rotate_half(x) * sin, rotate_half(x) = concat(-x2, x1)
 * over the halves of the last axis.
 */
import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { broadcastStrides } from "./common.ts";
import { f32Items, headMajorView, inArena, tokenMajorItems } from "./fused.ts";
import type { EvalContext } from "./op.ts";

/** x (..., d), cos/sin broadcastable to x (same rank) -> (..., d). */
export function fusedRope(x: Tensor, cos: Tensor, sin: Tensor, ctx: EvalContext): Tensor {
  const rank = x.shape.length;
  const d = x.shape[rank - 1]!;
  if (d % 2 !== 0 || cos.shape.length !== rank || sin.shape.length !== rank) {
    throw new RangeError(`RoPE of [${x.shape}] with cos [${cos.shape}], sin [${sin.shape}]`);
  }
  const k = ctx.kernels;
  // Rows of tokens (S, H, D) seen as (1, H, S, D): the kernel's own layout, read in place.
  const rows = k ? tokenMajorItems(x) : null;
  const xs = rows ?? f32Items(x);
  const cs = f32Items(cos);
  const ss = f32Items(sin);
  // Kernel layout: x as (outer, m, d) with cos/sin (m, d) shared by every outer slice.
  const m = rank >= 2 ? x.shape[rank - 2]! : 1;
  const csShape = cos.shape.join();
  const kernelFits = k && xs.length > 0 && csShape === sin.shape.join() &&
    cos.shape.slice(0, -2).every((v) => v === 1) && cs.length === m * d;
  if (k && kernelFits && rows) {
    const heads = x.shape[1]!;
    const y = inArena(k, ctx.arena, [rows, cs, ss], rows.length, ([xo, co, so], yo) => {
      k.ropeRotateHalf(xo!, co!, so!, yo, m, heads, d);
    });
    return headMajorView(y, heads, m, d);
  }
  if (k && kernelFits) {
    const outer = xs.length / (m * d);
    const y = inArena(k, ctx.arena, [xs, cs, ss], xs.length, ([xo, co, so], yo) => {
      // One row (decode): (outer, 1, d) is the kernel's (1, nHeads, d) in one call.
      if (m === 1) return k.ropeRotateHalf(xo!, co!, so!, yo, 1, outer, d);
      for (let o = 0; o < outer; o++) {
        const at = o * m * d * 4;
        k.ropeRotateHalf(xo! + at, co!, so!, yo + at, m, 1, d);
      }
    });
    return tensor("f32", x.shape, y);
  }
  const f = Math.fround;
  const cst = broadcastStrides(cos.shape, x.shape);
  const sst = broadcastStrides(sin.shape, x.shape);
  const n = volume(x.shape);
  const y = new Float32Array(n);
  const half = d / 2;
  const idx = new Array<number>(rank).fill(0);
  for (let row = 0; row < n; row += d) {
    let co = 0;
    let so = 0;
    for (let a = 0; a < rank - 1; a++) {
      co += idx[a]! * cst[a]!;
      so += idx[a]! * sst[a]!;
    }
    for (let i = 0; i < d; i++) {
      const rot = i < half ? -xs[row + i + half]! : xs[row + i - half]!;
      y[row + i] = f(xs[row + i]! * cs[co + i * cst[rank - 1]!]!) +
        f(rot * ss[so + i * sst[rank - 1]!]!);
    }
    for (let a = rank - 2; a >= 0; a--) {
      if (++idx[a]! < x.shape[a]!) break;
      idx[a] = 0;
    }
  }
  return tensor("f32", x.shape, y);
}
