import { binaryOp } from "./elementwise.ts";
import { dimMul } from "../tensor/dim.ts";
/** `mul(x, y)` with NNEF broadcasting. */
export const mul = binaryOp("mul", (x, y) => x * y, { fold: dimMul });
