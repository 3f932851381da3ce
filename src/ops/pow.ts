import { binaryOp } from "./elementwise.ts";

/** `pow(x, y)` with NNEF broadcasting. */
export const pow = binaryOp("pow", (x, y) => Math.pow(x, y));
