import type { Tensor } from "../tensor/tensor.ts";
import type { EvalContext, Fact, InferContext, Op, OpArgs } from "./op.ts";
import { softmax } from "./softmax.ts";

/** `tract_core_softmax(x, axes, exp)`: softmax; the legacy `exp` attribute is ignored. */
export const tractCoreSoftmax: Op = {
  signature:
    "fragment tract_core_softmax(x: tensor<scalar>, axes: integer[], exp: string = '') -> (y: tensor<scalar>)",
  infer(args: OpArgs<Fact>, ctx: InferContext): Fact[] {
    return softmax.infer(args, ctx);
  },
  eval(args: OpArgs<Tensor>, ctx: EvalContext): Tensor[] {
    return softmax.eval(args, ctx);
  },
};
