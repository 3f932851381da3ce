/** Factory of the reductions (reduced axes are kept with size 1) and the reduction walk. */
import { strides, type Tensor, tensor, volume } from "../tensor/tensor.ts";
import type { Dim } from "../tensor/dim.ts";
import type { DType } from "../tensor/dtype.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { alloc, axisOf, finish, numeric } from "./common.ts";

/** Offsets of the reduced items (relative) and of each output's first item. */
export function reductionPlan(
  shape: readonly number[],
  axes: readonly number[],
): { outShape: number[]; bases: Int32Array; offsets: Int32Array } {
  const st = strides(shape);
  const reduced = new Set(axes);
  const outShape = shape.map((d, i) => (reduced.has(i) ? 1 : d));
  const keptAxes = shape.map((_, i) => i).filter((i) => !reduced.has(i));
  const redAxes = [...reduced].sort((a, b) => a - b);
  function offsetsOf(list: number[]): Int32Array {
    const n = volume(list.map((a) => shape[a]!));
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let rest = i;
      let off = 0;
      for (let j = list.length - 1; j >= 0; j--) {
        const a = list[j]!;
        off += (rest % shape[a]!) * st[a]!;
        rest = Math.floor(rest / shape[a]!);
      }
      out[i] = off;
    }
    return out;
  }
  return { outShape, bases: offsetsOf(keptAxes), offsets: offsetsOf(redAxes) };
}

/** A reduction op: `init`, `step(acc, x)`, `end(acc, count)`. */
export function reduceOp(
  name: string,
  init: number,
  step: (acc: number, x: number) => number,
  end: (acc: number, count: number) => number = (acc) => acc,
  options: { readonly normalize?: boolean; readonly dtype?: (input: DType) => DType } = {},
): Op {
  const normalizeParam = options.normalize ? ", normalize: logical = false" : "";
  return {
    signature:
      `fragment ${name}(input: tensor<scalar>, axes: integer[]${normalizeParam}) -> (output: tensor<scalar>)`,
    infer(args: OpArgs<Fact>): Fact[] {
      const x = args.tensor("input");
      const axes = args.ints("axes").map((a) => axisOf(a, x.shape.length, name));
      const dtype = options.dtype ? options.dtype(x.dtype) : x.dtype;
      return [{ dtype, shape: x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) as Dim[] }];
    },
    eval(args: OpArgs<Tensor>): Tensor[] {
      const x = args.tensor("input");
      const axes = args.ints("axes").map((a) => axisOf(a, x.shape.length, name));
      const dtype = options.dtype ? options.dtype(x.dtype) : x.dtype;
      const mean = options.normalize && args.bool("normalize");
      const { outShape, bases, offsets } = reductionPlan(x.shape, axes);
      const src = numeric(x);
      const out = alloc(dtype, bases.length);
      const count = offsets.length;
      for (let o = 0; o < bases.length; o++) {
        const base = bases[o]!;
        let acc = init;
        for (let r = 0; r < count; r++) acc = step(acc, src[base + offsets[r]!]!);
        const v = end(acc, count);
        out[o] = mean ? v / count : v;
      }
      return [finish(tensor(dtype, outShape, out))];
    },
  };
}

/** An arg-reduction op: index (i64) of the first item along `axes` no other item `beats`. */
export function argReduceOp(name: string, beats: (x: number, best: number) => boolean): Op {
  return {
    signature:
      `fragment ${name}(input: tensor<scalar>, axes: integer[]) -> (output: tensor<integer>)`,
    infer(args: OpArgs<Fact>): Fact[] {
      const x = args.tensor("input");
      const axes = args.ints("axes").map((a) => axisOf(a, x.shape.length, name));
      return [{ dtype: "i64", shape: x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) as Dim[] }];
    },
    eval(args: OpArgs<Tensor>): Tensor[] {
      const x = args.tensor("input");
      const axes = args.ints("axes").map((a) => axisOf(a, x.shape.length, name));
      const { outShape, bases, offsets } = reductionPlan(x.shape, axes);
      const src = numeric(x);
      const out = new Float64Array(bases.length);
      for (let o = 0; o < bases.length; o++) {
        let best = 0;
        for (let r = 1; r < offsets.length; r++) {
          if (beats(src[bases[o]! + offsets[r]!]!, src[bases[o]! + offsets[best]!]!)) best = r;
        }
        out[o] = best;
      }
      return [tensor("i64", outShape, out)];
    },
  };
}
