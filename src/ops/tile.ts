import { strides, type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { type Dim, dimMul } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { isStrided } from "./common.ts";
import { allocLike } from "./shape_ops.ts";

/** `tile(input, repeats)`; repeats may be wires holding symbolic dims. */
export const tile: Op = {
  signature: "fragment tile<?>(input: tensor<?>, repeats: integer[]) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const reps = args.dims("repeats");
    if (reps.length !== x.shape.length) {
      throw new RangeError(`tile: ${reps.length} repeats for rank ${x.shape.length}`);
    }
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => dimMul(d, reps[i]!)) as Dim[] }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    const reps = args.ints("repeats");
    const rank = x.shape.length;
    const shape = x.shape.map((d, i) => d * reps[i]!);
    const n = volume(shape);
    const src = x.data as Float32Array;
    const out = allocLike(src, n) as Float32Array;
    if (n === 0) return [tensor(x.dtype, shape, out)];
    // A strided view (the runtime's KV cache) is read in place.
    const st = isStrided(x) ? x.strides : strides(x.shape);
    const origin = isStrided(x) ? x.offset : 0;
    // Trailing axes that are not repeated and contiguous in the source copy as one block.
    let k = rank;
    let block = 1;
    while (k > 0 && reps[k - 1] === 1 && st[k - 1] === block) {
      k--;
      block *= x.shape[k]!;
    }
    if (k === 0) {
      out.set(src.subarray(origin, origin + block));
      return [tensor(x.dtype, shape, out)];
    }
    // Odometer over the outer axes [0, k); source coordinates wrap at the input dims.
    const idx = new Array<number>(k).fill(0);
    const at = new Array<number>(k).fill(0);
    let base = origin;
    for (let o = 0; o < n; o += block) {
      if (block >= 32) out.set(src.subarray(base, base + block), o);
      else for (let q = 0; q < block; q++) out[o + q] = src[base + q]!;
      for (let ax = k - 1; ax >= 0; ax--) {
        idx[ax]!++;
        at[ax]!++;
        base += st[ax]!;
        if (at[ax] === x.shape[ax]) {
          base -= st[ax]! * x.shape[ax]!;
          at[ax] = 0;
        }
        if (idx[ax]! < shape[ax]!) break;
        idx[ax] = 0;
      }
    }
    return [tensor(x.dtype, shape, out)];
  },
  acceptsStrided: true,
};
