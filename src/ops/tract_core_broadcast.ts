import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { type Dim, dimEquals, shapeToString } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { broadcastStrides } from "./common.ts";
import { allocLike } from "./shape_ops.ts";

/** numpy multi-broadcast of `input` (leading axes added) with `shape`. */
function target(input: readonly Dim[], shape: readonly Dim[]): Dim[] {
  const rank = Math.max(input.length, shape.length);
  const a = [...new Array<Dim>(rank - input.length).fill(1), ...input];
  const b = [...new Array<Dim>(rank - shape.length).fill(1), ...shape];
  return a.map((x, i) => {
    const y = b[i]!;
    if (dimEquals(x, y) || x === 1) return y;
    if (y === 1) return x;
    throw new RangeError(
      `tract_core_broadcast: cannot broadcast ${shapeToString(input)} to ${shapeToString(shape)}`,
    );
  });
}

/** `tract_core_broadcast(input, shape)`: numpy multi-broadcast to `shape`. */
export const tractCoreBroadcast: Op = {
  signature:
    "fragment tract_core_broadcast(input: tensor<?>, shape: integer[]) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    return [{ dtype: x.dtype, shape: target(x.shape, args.dims("shape")) }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const x = args.tensor("input");
    const shape = target(x.shape, args.ints("shape")) as number[];
    const padded = [...new Array<number>(shape.length - x.shape.length).fill(1), ...x.shape];
    const st = broadcastStrides(padded, shape);
    const n = volume(shape);
    const src = x.data as Float32Array;
    const out = allocLike(src, n) as Float32Array;
    for (let o = 0; o < n; o++) {
      let rest = o;
      let off = 0;
      for (let ax = shape.length - 1; ax >= 0; ax--) {
        off += (rest % shape[ax]!) * st[ax]!;
        rest = Math.floor(rest / shape[ax]!);
      }
      out[o] = src[off]!;
    }
    return [tensor(x.dtype, shape, out)];
  },
};
