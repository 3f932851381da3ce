import { strides, type Tensor, tensor, volume } from "../tensor/tensor.ts";
import type { Dim } from "../graph/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { withShape } from "./common.ts";
import { allocLike } from "./shape_ops.ts";

function permutation(axes: readonly number[], rank: number): number[] {
  const perm = axes.map((a) => (a < 0 ? a + rank : a));
  for (let i = perm.length; i < rank; i++) perm.push(i);
  const seen = new Set(perm);
  if (perm.length !== rank || seen.size !== rank || perm.some((a) => a < 0 || a >= rank)) {
    throw new RangeError(
      `transpose: axes [${axes.join(", ")}] are not a permutation of rank ${rank}`,
    );
  }
  return perm;
}

/** `transpose(input, axes)`: output axis i is input axis `axes[i]`. */
export const transpose: Op = {
  signature: "fragment transpose<?>(input: tensor<?>, axes: integer[]) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const perm = permutation(args.ints("axes"), x.shape.length);
    return [{ dtype: x.dtype, shape: perm.map((a) => x.shape[a]!) as Dim[] }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    const rank = x.shape.length;
    const perm = permutation(args.ints("axes"), rank);
    const shape = perm.map((a) => x.shape[a]!);
    // Moving only unit axes keeps the row-major order: a reshape, no copy.
    const moved = perm.filter((a) => x.shape[a] !== 1);
    if (moved.every((a, i) => i === 0 || a > moved[i - 1]!)) return [withShape(x, shape)];
    const n = volume(shape);
    const src = x.data as Float32Array;
    const out = allocLike(src, n) as Float32Array;
    const inStrides = strides(x.shape);
    const walk = perm.map((a) => inStrides[a]!);
    const idx = new Array<number>(rank).fill(0);
    let off = 0;
    for (let o = 0; o < n; o++) {
      out[o] = src[off]!;
      for (let ax = rank - 1; ax >= 0; ax--) {
        idx[ax]!++;
        off += walk[ax]!;
        if (idx[ax]! < shape[ax]!) break;
        off -= walk[ax]! * shape[ax]!;
        idx[ax] = 0;
      }
    }
    return [tensor(x.dtype, shape, out)];
  },
};
