import { strides, type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { shapeToString } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { alloc, axisOf, finish, numeric } from "./common.ts";

const NAME = "tract_core_gather_elements";

/**
 * `tract_core_gather_elements(input, indices, axis)` (ONNX GatherElements): the output has
 * the shape of `indices`, and `output[i..., j, k...] = input[i..., indices[i..., j, k...], k...]`
 * with `j` on `axis`; negative indices count from the end. Indices may be stored as floats.
 */
export const tractCoreGatherElements: Op = {
  signature:
    `fragment ${NAME}(input: tensor<?>, indices: tensor<?>, axis: integer) -> (output: tensor<?>)`,
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const idx = args.tensor("indices");
    if (x.shape.length !== idx.shape.length) {
      throw new RangeError(
        `${NAME}: indices ${shapeToString(idx.shape)} and input ${
          shapeToString(x.shape)
        } differ in rank`,
      );
    }
    const axis = axisOf(args.int("axis"), x.shape.length, NAME);
    idx.shape.forEach((d, i) => {
      const other = x.shape[i]!;
      if (i !== axis && typeof d === "number" && typeof other === "number" && d > other) {
        throw new RangeError(
          `${NAME}: indices ${shapeToString(idx.shape)} exceed input ${
            shapeToString(x.shape)
          } on axis ${i}`,
        );
      }
    });
    return [{ dtype: x.dtype, shape: idx.shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input"); // (..., n, ...)
    const idx = args.tensor("indices"); // (..., m, ...)
    const axis = axisOf(args.int("axis"), x.shape.length, NAME);
    const n = x.shape[axis]!;
    const inStrides = strides(x.shape);
    const outStrides = strides(idx.shape);
    const ids = numeric(idx);
    const src = numeric(x);
    const out = alloc(x.dtype, volume(idx.shape));
    for (let o = 0; o < out.length; o++) {
      let from = 0;
      let rest = o;
      for (let d = 0; d < idx.shape.length; d++) {
        const c = Math.floor(rest / outStrides[d]!);
        rest -= c * outStrides[d]!;
        if (d !== axis) {
          from += c * inStrides[d]!;
          continue;
        }
        let i = Math.trunc(ids[o]!);
        if (i < 0) i += n;
        if (i < 0 || i >= n) {
          throw new RangeError(`${NAME}: index ${ids[o]} is out of range for axis size ${n}`);
        }
        from += i * inStrides[d]!;
      }
      out[o] = src[from]!;
    }
    return [finish(tensor(x.dtype, idx.shape, out))];
  },
};
