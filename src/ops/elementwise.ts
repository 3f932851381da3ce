/** Factories for the unit element-wise and binary ops, each instantiated in its own file. */
import { type DType, isFloat } from "../tensor/dtype.ts";
import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { type Dim, dimSub, provablyNonNegative } from "../tensor/dim.ts";
import { isPaged } from "../tensor/paged.ts";
import type { EvalContext, Fact, Op, OpArgs } from "./op.ts";
import type { Kernels } from "../../kernels/mod.ts";
import {
  alloc,
  binaryEval,
  broadcastShapes,
  concreteShape,
  f32Result,
  finish,
  foldBinary,
  isIntegerLike,
  isStrided,
  knownDims,
  numeric,
  unifyDtypes,
} from "./common.ts";

export interface UnaryOptions {
  /** Result for integer inputs when it differs from `f` (ints stay ints). */
  readonly int?: (x: number) => number;
  /** Symbolic fold over known integer contents. */
  readonly fold?: (x: Dim) => Dim | null;
  /** Item type of the result, when not the input's. */
  readonly dtype?: (input: DType) => DType;
}

/** An op `y = f(x)` applied to each item. */
export function unaryOp(name: string, f: (x: number) => number, options: UnaryOptions = {}): Op {
  return {
    signature: `fragment ${name}(x: tensor<scalar>) -> (y: tensor<scalar>)`,
    infer(args: OpArgs<Fact>): Fact[] {
      const x = args.tensor("x");
      const dtype = options.dtype ? options.dtype(x.dtype) : x.dtype;
      const known = knownDims(x);
      const shape = concreteShape(x.shape);
      if (options.fold && known && shape && isIntegerLike(dtype)) {
        const out: Dim[] = [];
        for (const d of known) {
          const r = options.fold(d);
          if (r === null) return [{ dtype, shape: x.shape }];
          out.push(r);
        }
        return [{ dtype, shape, dims: out }];
      }
      return [{ dtype, shape: x.shape }];
    },
    eval(args: OpArgs<Tensor>): Tensor[] {
      const x = args.tensor("x");
      const dtype = options.dtype ? options.dtype(x.dtype) : x.dtype;
      const src = numeric(x);
      const out = alloc(dtype, src.length);
      const g = !isFloat(x.dtype) && options.int ? options.int : f;
      for (let i = 0; i < src.length; i++) out[i] = g(src[i]!);
      return [finish(tensor(dtype, x.shape, out))];
    },
  };
}

export interface BinaryOptions {
  /** Result for integer operands when it differs from `f` (e.g. truncating division). */
  readonly int?: (x: number, y: number) => number;
  /** Symbolic fold over known integer contents; null when undecidable. */
  readonly fold?: (x: Dim, y: Dim) => Dim | null;
  /** True for comparisons and logical ops, whose result is bool. */
  readonly logical?: boolean;
  /**
   * `f` over f32 operands of one shape, as a loop of its own: the shared loop calls `f` for
   * every item (21-25 µs for a 2048-float residual add, against 5-7 with a loop of its own).
   */
  readonly f32?: (x: Float32Array, y: Float32Array, z: Float32Array) => void;
  /**
   * The kernel that computes `f32` in the kernels' memory (offsets of x, y and z, items), for
   * operands a kernel op of the same run left there: a prompt's 24 residual adds at the 110M
   * shape (98,304 items each) took 3.6-3.8 ms as TS loops, 1.4-1.9 ms as this kernel (CPU
   * profile, two threads).
   */
  readonly kernel?: (k: Kernels, x: number, y: number, z: number, n: number) => void;
}

/** `t`'s items when it is a row-major f32 tensor of `n` items. */
function plainF32(t: Tensor, n: number): Float32Array | null {
  return t.dtype === "f32" && t.data instanceof Float32Array && t.data.length === n &&
      !isStrided(t) && !isPaged(t)
    ? t.data
    : null;
}

/** A broadcasting op `z = f(x, y)`. */
export function binaryOp(
  name: string,
  f: (x: number, y: number) => number,
  options: BinaryOptions = {},
): Op {
  return {
    signature: `fragment ${name}(x: tensor<scalar>, y: tensor<scalar>) -> (z: tensor<scalar>)`,
    infer(args: OpArgs<Fact>): Fact[] {
      const x = args.tensor("x");
      const y = args.tensor("y");
      const common = unifyDtypes(x, y);
      const dtype: DType = options.logical ? "bool" : common;
      const shape = broadcastShapes(x.shape, y.shape);
      if (options.fold && isIntegerLike(common)) {
        const dims = foldBinary(x, y, shape, options.fold);
        if (dims) return [{ dtype, shape, dims }];
      }
      return [{ dtype, shape }];
    },
    eval(args: OpArgs<Tensor>, ctx?: EvalContext): Tensor[] {
      const x = args.tensor("x");
      const y = args.tensor("y");
      if (
        options.f32 && x.shape.length === y.shape.length &&
        x.shape.every((d, i) => d === y.shape[i])
      ) {
        const n = volume(x.shape);
        const xs = plainF32(x, n);
        const ys = plainF32(y, n);
        if (xs && ys) {
          const z = f32Result(ctx, n);
          const arena = ctx?.arena;
          if (
            options.kernel && ctx?.kernels && arena?.holds(xs) && arena.holds(ys) && arena.holds(z)
          ) {
            options.kernel(ctx.kernels, xs.byteOffset, ys.byteOffset, z.byteOffset, n);
          } else {
            if (arena?.holds(z)) ctx!.kernels?.noteHostWrite();
            options.f32(xs, ys, z);
          }
          return [tensor("f32", x.shape, z)];
        }
      }
      const common = unifyDtypes(x, y);
      const dtype: DType = options.logical ? "bool" : common;
      const g = !isFloat(common) && options.int ? options.int : f;
      return [binaryEval(x, y, dtype, g)];
    },
  };
}

/** Fold of a comparison: 1, 0, or null when the symbols leave it open. */
export function compareDims(
  x: Dim,
  y: Dim,
  op: "<" | "<=" | ">" | ">=" | "==" | "!=",
): Dim | null {
  if (typeof x === "number" && typeof y === "number") {
    const r = op === "<"
      ? x < y
      : op === "<="
      ? x <= y
      : op === ">"
      ? x > y
      : op === ">="
      ? x >= y
      : op === "=="
      ? x === y
      : x !== y;
    return r ? 1 : 0;
  }
  const d = dimSub(x, y);
  if (op === "==" || op === "!=") {
    if (d === 0) return op === "==" ? 1 : 0;
    return null;
  }
  // x >= y  <=>  x - y >= 0 ; x > y <=> x - y - 1 >= 0
  const ge = provablyNonNegative(d) ? true : provablyNonNegative(dimSub(-1, d)) ? false : null;
  const gt = provablyNonNegative(dimSub(d, 1))
    ? true
    : provablyNonNegative(dimSub(0, d))
    ? false
    : null;
  const r = op === ">="
    ? ge
    : op === ">"
    ? gt
    : op === "<"
    ? (ge === null ? null : !ge)
    : (gt === null ? null : !gt);
  return r === null ? null : r ? 1 : 0;
}
