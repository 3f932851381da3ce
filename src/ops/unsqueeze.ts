import type { Tensor } from "../tensor/tensor.ts";
import type { Dim } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { isStrided, type StridedTensor, withShape } from "./common.ts";

/** tract applies the sorted axes one after another: `axes = [0, 0]` adds two leading axes. */
function unsqueezed<D extends Dim>(shape: readonly D[], axes: readonly number[]): D[] {
  const out: D[] = [...shape];
  for (const axis of [...axes].sort((a, b) => a - b)) {
    const a = axis < 0 ? axis + out.length + 1 : axis;
    if (a < 0 || a > out.length) {
      throw new RangeError(`unsqueeze: axis ${axis} is out of range for rank ${out.length}`);
    }
    out.splice(a, 0, 1 as D);
  }
  return out;
}

/** `unsqueeze(input, axes)`: inserts unit axes. */
export const unsqueeze: Op = {
  signature: "fragment unsqueeze<?>(input: tensor<?>, axes: integer[]) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const shape = unsqueezed(x.shape, args.ints("axes"));
    return [x.dims ? { dtype: x.dtype, shape, dims: x.dims } : { dtype: x.dtype, shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    const axes = args.ints("axes");
    if (isStrided(x)) {
      // A view stays a view: unit axes take any stride.
      const view: StridedTensor = {
        dtype: x.dtype,
        shape: unsqueezed(x.shape, axes),
        data: x.data,
        strides: unsqueezed(x.strides, axes),
        offset: x.offset,
      };
      return [view];
    }
    return [withShape(x, unsqueezed(x.shape, axes))];
  },
  acceptsStrided: true,
};
