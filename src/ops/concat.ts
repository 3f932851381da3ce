import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { type Dim, dimAdd, dimEquals, shapeToString } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { axisOf, knownDims, unifyDtypes } from "./common.ts";
import { allocLike } from "./shape_ops.ts";

function concatShape(
  shapes: readonly (readonly Dim[])[],
  axis: number,
): { shape: Dim[]; axis: number } {
  const first = shapes[0];
  if (!first) throw new RangeError("concat: no values");
  const a = axisOf(axis, first.length, "concat");
  const shape = [...first];
  for (const s of shapes.slice(1)) {
    if (s.length !== first.length || s.some((d, i) => i !== a && !dimEquals(d, first[i]!))) {
      throw new RangeError(
        `concat: shapes ${shapes.map(shapeToString).join(", ")} differ outside axis ${a}`,
      );
    }
    shape[a] = dimAdd(shape[a]!, s[a]!);
  }
  return { shape, axis: a };
}

/** `concat(values, axis)`. */
export const concat: Op = {
  signature: "fragment concat<?>(values: tensor<?>[], axis: integer) -> (value: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const xs = args.tensors("values");
    const { shape } = concatShape(xs.map((x) => x.shape), args.int("axis"));
    const dtype = xs.reduce((d, x) => unifyDtypes({ dtype: d, shape: [] }, x), xs[0]!.dtype);
    if (shape.length === 1) {
      const parts = xs.map(knownDims);
      if (parts.every((p) => p !== undefined)) {
        return [{ dtype, shape, dims: parts.flatMap((p) => [...p!]) }];
      }
    }
    return [{ dtype, shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const xs = args.tensors("values");
    const { shape, axis } = concatShape(xs.map((x) => x.shape), args.int("axis"));
    const outShape = shape as number[];
    const outer = volume(outShape.slice(0, axis));
    const out = allocLike(xs[0]!.data as Float32Array, volume(outShape)) as Float32Array;
    const rowLen = volume(outShape.slice(axis));
    let col = 0;
    for (const x of xs) {
      const chunk = volume(x.shape.slice(axis));
      const src = x.data as Float32Array;
      for (let o = 0; o < outer; o++) {
        out.set(src.subarray(o * chunk, (o + 1) * chunk), o * rowLen + col);
      }
      col += chunk;
    }
    return [tensor(xs[0]!.dtype, outShape, out)];
  },
};
