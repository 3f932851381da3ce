import { binaryOp } from "./elementwise.ts";
import { dimSub } from "../tensor/dim.ts";
/** `sub(x, y)` with NNEF broadcasting. */
export const sub = binaryOp("sub", (x, y) => x - y, {
  fold: dimSub,
  f32: (x, y, z) => {
    for (let i = 0; i < z.length; i++) z[i] = x[i]! - y[i]!;
  },
});
