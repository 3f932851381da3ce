import { binaryOp } from "./elementwise.ts";
import { dimSub } from "../tensor/dim.ts";
/** `sub(x, y)` with NNEF broadcasting. */
export const sub = binaryOp("sub", (x, y) => x - y, { fold: dimSub });
