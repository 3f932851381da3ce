import { type Tensor, tensor } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { axisOf, finish } from "./common.ts";
import { asF32 } from "./matmul.ts";
import { reductionPlan } from "./reduce.ts";

/** `x * rsqrt(mean(x², axis) + eps)` over one axis (no weight), as tract's rms_norm. */
export function rmsNormEval(x: Tensor, axis: number, eps: number): Tensor {
  const a = axisOf(axis, x.shape.length, "rms_norm");
  const src = asF32(x);
  const out = new Float32Array(src.length);
  const { bases, offsets } = reductionPlan(x.shape, [a]);
  for (let o = 0; o < bases.length; o++) {
    const base = bases[o]!;
    let ss = 0;
    for (let r = 0; r < offsets.length; r++) ss += src[base + offsets[r]!]! ** 2;
    const scale = 1 / Math.sqrt(ss / offsets.length + eps);
    for (let r = 0; r < offsets.length; r++) {
      out[base + offsets[r]!] = src[base + offsets[r]!]! * scale;
    }
  }
  return finish(tensor(x.dtype, x.shape, out));
}

/** `tract_core_rms_norm(input, axis, eps)`. */
export const tractCoreRmsNorm: Op = {
  signature:
    "fragment tract_core_rms_norm(input: tensor<scalar>, axis: integer, eps: scalar = 1e-6) -> (output: tensor<scalar>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    axisOf(args.int("axis"), x.shape.length, "tract_core_rms_norm");
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    return [rmsNormEval(args.tensor("input"), args.int("axis"), args.float("eps"))];
  },
};
