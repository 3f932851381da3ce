import { type Tensor, tensor } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { axisOf, finish } from "./common.ts";
import { reductionPlan } from "./reduce.ts";
import { asF32 } from "./matmul.ts";

/** Softmax in place over the reduced groups described by a reduction plan. */
export function softmaxInPlace(
  values: Float32Array,
  bases: Int32Array,
  offsets: Int32Array,
): void {
  for (let o = 0; o < bases.length; o++) {
    const base = bases[o]!;
    let max = -Infinity;
    for (let r = 0; r < offsets.length; r++) {
      const v = values[base + offsets[r]!]!;
      if (v > max) max = v;
    }
    let sum = 0;
    for (let r = 0; r < offsets.length; r++) {
      const i = base + offsets[r]!;
      const e = max === -Infinity ? 0 : Math.exp(values[i]! - max);
      values[i] = e;
      sum += e;
    }
    const inv = sum > 0 ? 1 / sum : 0;
    for (let r = 0; r < offsets.length; r++) values[base + offsets[r]!]! *= inv;
  }
}

/** `softmax(x, axes)`: exp(x - max) / sum over `axes`. */
export const softmax: Op = {
  signature: "fragment softmax(x: tensor<scalar>, axes: integer[] = [1]) -> (y: tensor<scalar>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("x");
    for (const a of args.ints("axes")) axisOf(a, x.shape.length, "softmax");
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("x");
    const axes = args.ints("axes").map((a) => axisOf(a, x.shape.length, "softmax"));
    const values = Float32Array.from(asF32(x));
    const { bases, offsets } = reductionPlan(x.shape, axes);
    softmaxInPlace(values, bases, offsets);
    return [finish(tensor(x.dtype, x.shape, values))];
  },
};
