import type { Tensor } from "../tensor/tensor.ts";
import type { Fact, InferContext, Op, OpArgs } from "./op.ts";

/** `variable(shape, label)`: the archive tensor `label`, with its own item type. */
export const variable: Op = {
  signature:
    "fragment variable<? = scalar>(shape: integer[], label: string) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>, ctx: InferContext): Fact[] {
    const shape = args.ints("shape");
    const value = ctx.variable(args.str("label"), shape);
    return [{ dtype: value.dtype, shape: value.shape, value }];
  },
  eval(): Tensor[] {
    throw new TypeError("variable is loaded at load time and is never evaluated");
  },
};
