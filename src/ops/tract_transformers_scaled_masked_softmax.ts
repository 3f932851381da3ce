import { type Tensor, tensor } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { binaryEval, broadcastShapes, finish } from "./common.ts";
import { reductionPlan } from "./reduce.ts";
import { softmaxInPlace } from "./softmax.ts";

/**
 * `tract_transformers_scaled_masked_softmax(input, mask, scale, post_softmax_mask)`: softmax
 * over the last axis of `input*scale + mask` (float mask) or of `input*scale` where the bool
 * mask is true (-inf elsewhere); with `post_softmax_mask`, masked-out items become 0.
 */
export const tractTransformersScaledMaskedSoftmax: Op = {
  signature:
    "fragment tract_transformers_scaled_masked_softmax(input: tensor<scalar>, mask: tensor<scalar>, scale: scalar, post_softmax_mask: logical = false) -> (output: tensor<scalar>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    return [{ dtype: x.dtype, shape: broadcastShapes(x.shape, args.tensor("mask").shape) }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    const mask = args.tensor("mask");
    const scale = args.float("scale");
    const bool = mask.dtype === "bool";
    const scores = binaryEval(
      x,
      mask,
      "f32",
      bool ? (p, m) => (m ? p * scale : -Infinity) : (p, m) => p * scale + m,
    );
    const values = scores.data as Float32Array;
    const { bases, offsets } = reductionPlan(scores.shape, [scores.shape.length - 1]);
    softmaxInPlace(values, bases, offsets);
    let out = tensor(x.dtype, scores.shape, values);
    if (bool && args.bool("post_softmax_mask")) {
      out = binaryEval(out, mask, x.dtype, (p, m) => (m ? p : 0));
    }
    return [finish(out)];
  },
};
