import { binaryOp } from "./elementwise.ts";
import { dimMul } from "../tensor/dim.ts";
/** `mul(x, y)` with NNEF broadcasting. */
export const mul = binaryOp("mul", (x, y) => x * y, {
  fold: dimMul,
  f32: (x, y, z) => {
    for (let i = 0; i < z.length; i++) z[i] = x[i]! * y[i]!;
  },
});
