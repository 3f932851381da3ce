import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { type Dim, dimMul } from "../graph/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { isStrided, rowStrides } from "./common.ts";
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
    const st = isStrided(x) ? x.strides : rowStrides(x.shape);
    const origin = isStrided(x) ? x.offset : 0;
    const inner = shape[rank - 1] ?? 1;
    const innerIn = x.shape[rank - 1] ?? 1;
    const innerStride = st[rank - 1] ?? 1;
    // Odometer over the output rows; `src` coordinates wrap at the input dims.
    const idx = new Array<number>(rank).fill(0);
    const at = new Array<number>(rank).fill(0);
    let base = origin;
    for (let o = 0; o < n; o += inner) {
      if (inner === innerIn && innerStride === 1) out.set(src.subarray(base, base + inner), o);
      else for (let k = 0; k < inner; k++) out[o + k] = src[base + (k % innerIn) * innerStride]!;
      for (let ax = rank - 2; ax >= 0; ax--) {
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
