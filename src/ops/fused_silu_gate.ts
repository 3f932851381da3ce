/** Fused SiLU gate: y = silu(a) * b = a * sigmoid(a) * b (the MLP gate of LLaMA-style models). */
import { type Tensor, tensor } from "../tensor/tensor.ts";
import { f32Items, inArena } from "./fused.ts";
import type { EvalContext } from "./op.ts";

/** a, b of one shape -> silu(a) * b. */
export function fusedSiluGate(a: Tensor, b: Tensor, ctx: EvalContext): Tensor {
  const as = f32Items(a);
  const bs = f32Items(b);
  if (as.length !== bs.length) {
    throw new RangeError(`SiLU gate operands differ: [${a.shape}] and [${b.shape}]`);
  }
  const k = ctx.kernels;
  if (k && as.length > 0) {
    const y = inArena(
      k,
      ctx.arena,
      [as, bs],
      as.length,
      ([ao, bo], yo) => k.siluGate(ao!, bo!, yo, as.length),
    );
    return tensor("f32", a.shape, y);
  }
  const f = Math.fround;
  const y = new Float32Array(as.length);
  for (let i = 0; i < as.length; i++) {
    const x = as[i]!;
    y[i] = f(x * f(1 / (1 + Math.exp(-x)))) * bs[i]!;
  }
  return tensor("f32", a.shape, y);
}
