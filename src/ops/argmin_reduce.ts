import { type Tensor, tensor } from "../tensor/tensor.ts";
import type { Dim } from "../graph/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { axisOf, numeric } from "./common.ts";
import { reductionPlan } from "./reduce.ts";

/** `argmin_reduce(input, axes)`: index (i64) of the first extreme item along `axes`, kept as size 1. */
export const argminReduce: Op = {
  signature:
    "fragment argmin_reduce(input: tensor<scalar>, axes: integer[]) -> (output: tensor<integer>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const axes = args.ints("axes").map((a) => axisOf(a, x.shape.length, "argmin_reduce"));
    return [{ dtype: "i64", shape: x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) as Dim[] }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    const axes = args.ints("axes").map((a) => axisOf(a, x.shape.length, "argmin_reduce"));
    const { outShape, bases, offsets } = reductionPlan(x.shape, axes);
    const src = numeric(x);
    const out = new Float64Array(bases.length);
    for (let o = 0; o < bases.length; o++) {
      let best = 0;
      for (let r = 1; r < offsets.length; r++) {
        if (src[bases[o]! + offsets[r]!]! < src[bases[o]! + offsets[best]!]!) best = r;
      }
      out[o] = best;
    }
    return [tensor("i64", outShape, out)];
  },
};
