import { binaryOp } from "./elementwise.ts";
import { dimAdd } from "../tensor/dim.ts";
/** `add(x, y)` with NNEF broadcasting. */
export const add = binaryOp("add", (x, y) => x + y, {
  fold: dimAdd,
  f32: (x, y, z) => {
    for (let i = 0; i < z.length; i++) z[i] = x[i]! + y[i]!;
  },
  kernel: (k, x, y, z, n) => k.add(x, y, z, n),
});
