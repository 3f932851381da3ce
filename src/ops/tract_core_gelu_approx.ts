import { type Tensor, tensor } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { finish } from "./common.ts";
import { asF32 } from "./matmul.ts";

/** `0.5x(1 + tanh(√(2/π)(x + 0.044715·x^N)))`, N = 2 when `fast_impl`, else 3. */
export function geluApprox(x: Tensor, fast: boolean): Tensor {
  const src = asF32(x);
  const out = new Float32Array(src.length);
  const c = Math.sqrt(2 / Math.PI);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    const p = fast ? v * v : v * v * v;
    out[i] = 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * p)));
  }
  return finish(tensor(x.dtype, x.shape, out));
}

/** `tract_core_gelu_approx(input, fast_impl)`. */
export const tractCoreGeluApprox: Op = {
  signature:
    "fragment tract_core_gelu_approx(input: tensor<scalar>, fast_impl: logical = false) -> (output: tensor<scalar>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    return [geluApprox(args.tensor("input"), args.bool("fast_impl"))];
  },
};
