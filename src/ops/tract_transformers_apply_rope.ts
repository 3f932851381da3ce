import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { binaryEval, broadcastShapes, finish } from "./common.ts";
import { asF32 } from "./matmul.ts";

/** `rotate_half([a | b]) = [-b | a]` on the last axis. */
function rotateHalf(x: Tensor): Tensor {
  const d = x.shape[x.shape.length - 1]!;
  if (d % 2 !== 0) throw new RangeError(`apply_rope: last dim ${d} is odd`);
  const src = asF32(x);
  const out = new Float32Array(src.length);
  const half = d / 2;
  for (let o = 0; o < volume(x.shape); o += d) {
    for (let j = 0; j < half; j++) {
      out[o + j] = -src[o + half + j]!;
      out[o + half + j] = src[o + j]!;
    }
  }
  return tensor(x.dtype, x.shape, out);
}

/** `tract_transformers_apply_rope(input, cos, sin) = input*cos + rotate_half(input)*sin`. */
export const tractTransformersApplyRope: Op = {
  signature:
    "fragment tract_transformers_apply_rope(input: tensor<scalar>, cos: tensor<scalar>, sin: tensor<scalar>) -> (output: tensor<scalar>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const shape = broadcastShapes(
      broadcastShapes(x.shape, args.tensor("cos").shape),
      args.tensor("sin").shape,
    );
    return [{ dtype: x.dtype, shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    const a = binaryEval(x, args.tensor("cos"), x.dtype, (p, q) => p * q);
    const b = binaryEval(rotateHalf(x), args.tensor("sin"), x.dtype, (p, q) => p * q);
    return [finish(binaryEval(a, b, x.dtype, (p, q) => p + q))];
  },
};
