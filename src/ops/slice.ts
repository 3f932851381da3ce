import { type Tensor, tensor } from "../tensor/tensor.ts";
import { type Dim, dimAdd, dimDiv, dimMax, dimMin, dimSub, shapeToString } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { axisOf, concreteShape, knownDims } from "./common.ts";
import { allocLike, copyBox } from "./shape_ops.ts";

/** A slice's window along one axis: its first item, its item count and its stride. */
export interface Window<D> {
  readonly begin: D;
  readonly count: D;
  readonly step: number;
}

/**
 * tract's slice bounds: a constant negative begin counts from the end, a constant end <= 0
 * too (legacy "0 = to the end"); both are clamped to the dim.
 */
export function sliceWindow(
  dim: Dim,
  begin: Dim,
  end: Dim,
  step: number,
  beginConst: boolean,
  endConst: boolean,
): Window<Dim> {
  if (step <= 0) throw new RangeError(`slice: stride ${step} is not supported`);
  let b = beginConst && typeof begin === "number" && begin < 0 ? dimAdd(dim, begin) : begin;
  let e = endConst && typeof end === "number" && end <= 0 ? dimAdd(dim, end) : end;
  b = dimMax(0, dimMin(b, dim));
  e = dimMax(b, dimMin(e, dim));
  const span = dimSub(e, b);
  const count = step === 1 ? span : dimDiv(dimAdd(span, step - 1), step);
  return { begin: b, count, step };
}

function plan<D extends Dim>(
  args: OpArgs<unknown & object>,
  shape: readonly D[],
  begins: readonly D[],
  ends: readonly D[],
): { axes: number[]; windows: Window<Dim>[] } {
  const axes = args.ints("axes").map((a) => axisOf(a, shape.length, "slice"));
  const strides = args.has("stride") ? args.ints("stride") : [];
  if (begins.length !== axes.length || ends.length !== axes.length) {
    throw new RangeError(
      `slice: ${axes.length} axes but ${begins.length} begins and ${ends.length} ends`,
    );
  }
  const windows = axes.map((a, i) =>
    sliceWindow(
      shape[a]!,
      begins[i]!,
      ends[i]!,
      strides[i] ?? 1,
      args.knownAtLoad("begin", i),
      args.knownAtLoad("end", i),
    )
  );
  return { axes, windows };
}

/** `slice(input, axes, begin, end, stride)`; bounds may be wires or symbolic dims. */
export const slice: Op = {
  signature:
    "fragment slice<?>(input: tensor<?>, axes: integer[], begin: integer[], end: integer[], stride: integer[] = []) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const { axes, windows } = plan(args, x.shape, args.dims("begin"), args.dims("end"));
    const shape = [...x.shape];
    axes.forEach((a, i) => (shape[a] = windows[i]!.count));
    for (const d of shape) {
      if (typeof d === "number" && d < 0) {
        throw new RangeError(`slice: empty or negative window on ${shapeToString(x.shape)}`);
      }
    }
    const known = knownDims(x);
    if (known && x.shape.length === 1 && windows.length === 1) {
      const w = windows[0]!;
      if (typeof w.begin === "number" && typeof w.count === "number") {
        const dims = [];
        for (let i = 0; i < w.count; i++) dims.push(known[w.begin + i * w.step]!);
        return [{ dtype: x.dtype, shape, dims }];
      }
    }
    return [{ dtype: x.dtype, shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    const { axes, windows } = plan(args, x.shape, args.ints("begin"), args.ints("end"));
    const start = x.shape.map(() => 0);
    const step = x.shape.map(() => 1);
    const count = [...x.shape];
    axes.forEach((a, i) => {
      start[a] = windows[i]!.begin as number;
      step[a] = windows[i]!.step;
      count[a] = windows[i]!.count as number;
    });
    if (x.dtype === "q40") throw new TypeError("slice: cannot slice q40 tensors");
    // The whole tensor (e.g. the attention mask sliced to the full key length): no copy.
    if (count.every((c, a) => c === x.shape[a] && (step[a] === 1 || c <= 1))) return [x];
    const out = allocLike(x.data as Float32Array, count.reduce((p, q) => p * q, 1));
    copyBox(x.data as Float32Array, x.shape, start, step, count, out);
    return [tensor(x.dtype, concreteShape(count)!, out)];
  },
};
