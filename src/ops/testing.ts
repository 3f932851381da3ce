/** Small helpers for the op tests: run an op on literal tensors. */
import type { DType } from "../tensor/dtype.ts";
import { type Tensor, tensor } from "../tensor/tensor.ts";
import { Args, type ArgValue } from "./args.ts";
import { contiguous } from "./common.ts";
import { type Fact, type Op, opName } from "./op.ts";

/** A tensor from a flat list of values. */
export function t(dtype: DType, shape: readonly number[], values: readonly number[]): Tensor {
  const out = tensor(dtype, shape);
  (out.data as Float32Array | Float64Array | Uint8Array).set(values);
  return out;
}

/** Evaluates `op` and returns its first output. */
export function evalOp(op: Op, args: Record<string, ArgValue<Tensor>>): Tensor {
  return op.eval(new Args<Tensor>(opName(op), args), { bindings: new Map() })[0]!;
}

/** Infers the facts of `op`'s first output. */
export function inferOp(op: Op, args: Record<string, ArgValue<Fact>>): Fact {
  return op.infer(new Args<Fact>(opName(op), args), {
    variable(label: string): Tensor {
      throw new RangeError(`No variable ${label} in a test`);
    },
  })[0]!;
}

/** Items of a tensor as a plain array, in row-major order (a strided view read through). */
export function items(x: Tensor): number[] {
  return Array.from(contiguous(x).data as Float32Array | Float64Array | Uint8Array);
}
