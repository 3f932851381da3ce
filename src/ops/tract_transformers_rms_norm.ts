import type { Tensor } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { rmsNormEval, tractCoreRmsNorm } from "./tract_core_rms_norm.ts";

/** `tract_transformers_rms_norm(input, axis, eps)`: the older name of tract_core_rms_norm. */
export const tractTransformersRmsNorm: Op = {
  signature:
    "fragment tract_transformers_rms_norm(input: tensor<scalar>, axis: integer, eps: scalar = 1e-6) -> (output: tensor<scalar>)",
  infer(args: OpArgs<Fact>, ctx): Fact[] {
    return tractCoreRmsNorm.infer(args, ctx);
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    return [rmsNormEval(args.tensor("input"), args.int("axis"), args.float("eps"))];
  },
};
