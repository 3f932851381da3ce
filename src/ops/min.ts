import { binaryOp } from "./elementwise.ts";
import { dimMin } from "../tensor/dim.ts";
/** `min(x, y)` with NNEF broadcasting. */
export const min = binaryOp("min", (x, y) => Math.min(x, y), { fold: dimMin });
