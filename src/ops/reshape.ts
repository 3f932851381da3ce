import type { Tensor } from "../tensor/tensor.ts";
import { type Dim, dimDiv, dimEquals, dimMul, shapeToString } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { withShape } from "./common.ts";

/**
 * The reshaped dims of `shape[start, start+count)`: `0` copies the input dim, `-1` takes
 * what is left. Symbolic dims are cancelled pairwise before dividing.
 */
function reshaped(
  shape: readonly Dim[],
  spec: readonly Dim[],
  axisStart: number,
  axisCount: number,
): Dim[] {
  const start = axisStart < 0 ? axisStart + shape.length : axisStart;
  const count = axisCount < 0 ? shape.length - start : axisCount;
  if (start < 0 || count < 0 || start + count > shape.length) {
    throw new RangeError(
      `reshape: axis_start ${axisStart} and axis_count ${axisCount} do not fit an input of rank ${shape.length}`,
    );
  }
  const inDims = shape.slice(start, start + count);
  const out = spec.map((d, i) => {
    if (d !== 0) return d;
    const copied = inDims[i] ?? shape[start + i];
    if (copied === undefined) {
      throw new RangeError(
        `reshape: shape item ${i} is 0 (copy the input's dim), but ${
          shapeToString(shape)
        } has no axis ${start + i}`,
      );
    }
    return copied;
  });
  if (out.some((d) => typeof d === "number" && d < -1) || out.filter((d) => d === -1).length > 1) {
    throw new RangeError(
      `reshape: shape ${shapeToString(spec)} may hold one -1 and no other negative size`,
    );
  }
  const infer = out.findIndex((d) => d === -1);
  if (infer >= 0) {
    const rest = inDims.slice();
    const known: Dim[] = [];
    out.forEach((d, i) => {
      if (i === infer) return;
      const j = rest.findIndex((r) => dimEquals(r, d));
      if (j >= 0) rest.splice(j, 1);
      else known.push(d);
    });
    const num = rest.reduce<Dim>((p, q) => dimMul(p, q), 1);
    const den = known.reduce<Dim>((p, q) => dimMul(p, q), 1);
    let d: Dim;
    try {
      d = dimEquals(num, den) ? 1 : dimDiv(num, den);
    } catch {
      throw new RangeError(
        `reshape: cannot infer -1 of ${shapeToString(spec)} from ${shapeToString(shape)}`,
      );
    }
    if (
      typeof d === "number" && typeof num === "number" && typeof den === "number" && d * den !== num
    ) {
      throw new RangeError(
        `reshape: ${shapeToString(shape)} does not divide into ${shapeToString(spec)}`,
      );
    }
    out[infer] = d;
  }
  const before = inDims.reduce<Dim>((p, q) => dimMul(p, q), 1);
  const after = out.reduce<Dim>((p, q) => dimMul(p, q), 1);
  if (!dimEquals(before, after) && typeof before === "number" && typeof after === "number") {
    throw new RangeError(
      `reshape: cannot reshape ${shapeToString(shape)} to ${shapeToString(spec)}`,
    );
  }
  return [...shape.slice(0, start), ...out, ...shape.slice(start + count)];
}

/** `reshape(input, shape, axis_start, axis_count)`. */
export const reshape: Op = {
  signature:
    "fragment reshape<?>(input: tensor<?>, shape: integer[], axis_start: integer = 0, axis_count: integer = -1) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const shape = reshaped(
      x.shape,
      args.dims("shape"),
      args.int("axis_start"),
      args.int("axis_count"),
    );
    return [x.dims ? { dtype: x.dtype, shape, dims: x.dims } : { dtype: x.dtype, shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    const shape = reshaped(
      x.shape,
      args.ints("shape"),
      args.int("axis_start"),
      args.int("axis_count"),
    );
    return [withShape(x, shape as number[])];
  },
};
