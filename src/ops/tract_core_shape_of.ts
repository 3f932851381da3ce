import { type Tensor, tensor } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";

/** `tract_core_shape_of(input)`: the shape as a tdim vector, symbolic at load time. */
export const tractCoreShapeOf: Op = {
  signature: "fragment tract_core_shape_of(input: tensor<?>) -> (output: tensor<integer>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    return [{ dtype: "tdim", shape: [x.shape.length], dims: [...x.shape] }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    return [tensor("tdim", [x.shape.length], Float64Array.from(x.shape))];
  },
  acceptsStrided: true,
};
