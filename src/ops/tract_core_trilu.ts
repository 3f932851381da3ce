import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { alloc, numeric } from "./common.ts";

/**
 * `tract_core_trilu(input, k, upper)`: keeps the upper (`j - i >= k`) or lower
 * (`j - i <= k`) triangle of the last two axes and zeroes the rest, like torch.triu/tril.
 */
export const tractCoreTrilu: Op = {
  signature:
    "fragment tract_core_trilu(input: tensor<?>, k: integer = 0, upper: logical = true) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    if (x.shape.length < 2) throw new RangeError("tract_core_trilu: input needs rank >= 2");
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    const k = args.int("k");
    const upper = args.bool("upper");
    const rank = x.shape.length;
    const rows = x.shape[rank - 2]!;
    const cols = x.shape[rank - 1]!;
    const src = numeric(x);
    const out = alloc(x.dtype, src.length);
    const mats = volume(x.shape) / (rows * cols || 1);
    for (let m = 0; m < mats; m++) {
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          const keep = upper ? j - i >= k : j - i <= k;
          const o = (m * rows + i) * cols + j;
          out[o] = keep ? src[o]! : 0;
        }
      }
    }
    return [tensor(x.dtype, x.shape, out)];
  },
};
