import type { Tensor } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { binaryEval, broadcastShapes } from "./common.ts";
import { matmulEval, matmulShape } from "./matmul.ts";

/**
 * `linear(input, filter, bias) = matmul(input, filter, transposeB = true) + bias`. A Q4_0
 * filter is read block by block inside the product (no dequantized copy is kept).
 */
export const linear: Op = {
  signature:
    "fragment linear(input: tensor<scalar>, filter: tensor<scalar>, bias: tensor<scalar> = 0.0) -> (output: tensor<scalar>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const w = args.tensor("filter");
    const bias = args.tensor("bias");
    const shape = broadcastShapes(matmulShape(x.shape, w.shape, false, true), bias.shape);
    return [{ dtype: x.dtype === "f16" ? "f16" : "f32", shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const y = matmulEval(args.tensor("input"), args.tensor("filter"), false, true);
    const bias = args.tensor("bias");
    const d = bias.data as Float32Array;
    if (d.length === 1 && d[0] === 0) return [y];
    return [binaryEval(y, bias, y.dtype, (p, q) => p + q)];
  },
};
