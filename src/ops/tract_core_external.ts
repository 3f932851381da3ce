import { parseDType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";

/** `tract_core_external(shape, datum_type)`: a graph input; its dims may be symbols. */
export const tractCoreExternal: Op = {
  signature:
    "fragment tract_core_external(shape: integer[], datum_type: string) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    return [{ dtype: parseDType(args.str("datum_type")), shape: args.dims("shape") }];
  },
  eval(): Tensor[] {
    throw new TypeError("tract_core_external is a graph input and is never evaluated");
  },
};
