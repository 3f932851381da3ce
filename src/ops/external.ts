import type { Tensor } from "../tensor/tensor.ts";
import type { DType } from "../tensor/dtype.ts";
import type { Fact, Op, OpArgs } from "./op.ts";

/** The item type of NNEF's `<scalar>`, `<integer>`, `<logical>` generics. */
export function genericDtype(name: string): DType {
  return name === "integer" ? "i64" : name === "logical" ? "bool" : "f32";
}

/** `external<T>(shape)`: a graph input; T defaults to scalar (f32). */
export const external: Op = {
  signature: "fragment external<? = scalar>(shape: integer[]) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    return [{ dtype: genericDtype(args.str("?")), shape: args.dims("shape") }];
  },
  eval(): Tensor[] {
    throw new TypeError("external is a graph input and is never evaluated");
  },
};
