import type { DType } from "../tensor/dtype.ts";
import { isFloat, isInteger } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Fact, InferContext, Op, OpArgs } from "./op.ts";

/** Whether items of `dtype` are what `variable<type>` declares (a float or Q4_0 for `scalar`). */
function declares(type: string, dtype: DType): boolean {
  if (type === "scalar") return isFloat(dtype) || dtype === "q40";
  if (type === "integer") return isInteger(dtype);
  if (type === "logical") return dtype === "bool";
  return true;
}

/**
 * `variable<type>(shape, label)`: the archive tensor `label`, with its own item type, which
 * must be of the declared kind (a `.dat` of integers behind a `variable<scalar>` is refused).
 */
export const variable: Op = {
  signature:
    "fragment variable<? = scalar>(shape: integer[], label: string) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>, ctx: InferContext): Fact[] {
    const shape = args.ints("shape");
    const label = args.str("label");
    const value = ctx.variable(label, shape);
    const type = args.has("?") ? args.str("?") : "scalar";
    if (!declares(type, value.dtype)) {
      throw new TypeError(`'${label}.dat' holds ${value.dtype} items, the graph declares ${type}`);
    }
    return [{ dtype: value.dtype, shape: value.shape, value }];
  },
  eval(): Tensor[] {
    throw new TypeError("variable is loaded at load time and is never evaluated");
  },
};
