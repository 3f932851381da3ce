import type { Tensor } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { binaryEval, broadcastShapes, unifyDtypes } from "./common.ts";

/** `clamp(x, a, b) = max(min(x, b), a)` with NNEF broadcasting. */
export const clamp: Op = {
  signature:
    "fragment clamp(x: tensor<scalar>, a: tensor<scalar>, b: tensor<scalar>) -> (y: tensor<scalar>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const [x, a, b] = [args.tensor("x"), args.tensor("a"), args.tensor("b")];
    return [{
      dtype: unifyDtypes(x, a),
      shape: broadcastShapes(broadcastShapes(x.shape, a.shape), b.shape),
    }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const [x, a, b] = [args.tensor("x"), args.tensor("a"), args.tensor("b")];
    const dtype = unifyDtypes(x, a);
    return [binaryEval(binaryEval(x, b, dtype, Math.min), a, dtype, Math.max)];
  },
};
