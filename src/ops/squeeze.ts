import type { Tensor } from "../tensor/tensor.ts";
import { type Dim, shapeToString } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { axisOf, withShape } from "./common.ts";

function squeezed<D extends Dim>(shape: readonly D[], axes: readonly number[]): D[] {
  const norm = [...new Set(axes.map((a) => axisOf(a, shape.length, "squeeze")))]
    .sort((a, b) => b - a);
  const out = [...shape];
  for (const a of norm) {
    if (typeof shape[a] === "number" && shape[a] !== 1) {
      throw new RangeError(`squeeze: axis ${a} of ${shapeToString(shape)} is not 1`);
    }
    out.splice(a, 1);
  }
  return out;
}

/** `squeeze(input, axes)`: removes unit axes. */
export const squeeze: Op = {
  signature: "fragment squeeze<?>(input: tensor<?>, axes: integer[]) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const shape = squeezed(x.shape, args.ints("axes"));
    return [x.dims ? { dtype: x.dtype, shape, dims: x.dims } : { dtype: x.dtype, shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    return [withShape(x, squeezed(x.shape, args.ints("axes")))];
  },
};
