import { type DType, isFloat, parseDType } from "../tensor/dtype.ts";
import { type Tensor, tensor } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { alloc, contiguous, finish, isIntegerLike, numeric } from "./common.ts";
import { asF32 } from "./matmul.ts";

/** Casts `x` to `to`: floats to integers truncate, anything to bool is `x != 0`. */
export function castTensor(input: Tensor, to: DType): Tensor {
  if (input.dtype === to) return input;
  const x = contiguous(input);
  if (isIntegerLike(x.dtype) && isIntegerLike(to) && to !== "bool") {
    return {
      dtype: to,
      shape: x.shape,
      data: x.data instanceof Float64Array ? x.data : Float64Array.from(x.data as Uint8Array),
    };
  }
  const src = x.dtype === "q40" ? asF32(x) : numeric(x);
  const out = alloc(to, src.length);
  if (to === "bool") { for (let i = 0; i < src.length; i++) out[i] = src[i] ? 1 : 0; }
  else if (isFloat(to)) out.set(src);
  else for (let i = 0; i < src.length; i++) out[i] = Math.trunc(src[i]!);
  return finish(tensor(to, x.shape, out));
}

/** `tract_core_cast(input, to)`; `to = 'tdim'` on integers is a no-op. */
export const tractCoreCast: Op = {
  signature: "fragment tract_core_cast(input: tensor<?>, to: string) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const to = parseDType(args.str("to"));
    if (x.dims && isIntegerLike(to) && isIntegerLike(x.dtype)) {
      return [{ dtype: to, shape: x.shape, dims: x.dims }];
    }
    return [{ dtype: to, shape: x.shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    return [castTensor(args.tensor("input"), parseDType(args.str("to")))];
  },
  // A cast to the same type passes a view (the KV cache) through untouched.
  acceptsStrided: true,
};
