import { strides, type Tensor } from "../tensor/tensor.ts";
import type { Dim } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { contiguous, isStrided, stridedView, withShape } from "./common.ts";

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

/** True when `perm` moves only unit axes of `shape`: the row-major order stays, a reshape. */
export function keepsOrder(shape: readonly number[], perm: readonly number[]): boolean {
  let last = -1;
  for (const a of perm) {
    if (shape[a] === 1) continue;
    if (a < last) return false;
    last = a;
  }
  return true;
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
    if (!isStrided(x) && keepsOrder(x.shape, perm)) return [withShape(x, shape)];
    // A view of the same items, copied only by a reader that needs them in order: a transpose
    // back, or a kernel that reads the items where they lie, copies nothing.
    const inStrides = isStrided(x) ? x.strides : strides(x.shape);
    const walk = perm.map((a) => inStrides[a]!);
    const view = stridedView(x.dtype, shape, x.data, walk, isStrided(x) ? x.offset : 0);
    return [x.dtype === "q40" || x.dtype === "string" ? contiguous(view) : view];
  },
  acceptsStrided: true,
};
