import { binaryOp } from "./elementwise.ts";
import { dimMax } from "../tensor/dim.ts";
/** `max(x, y)` with NNEF broadcasting. */
export const max = binaryOp("max", (x, y) => Math.max(x, y), { fold: dimMax });
