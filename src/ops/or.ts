import { binaryOp } from "./elementwise.ts";

/** `or(x, y)` with NNEF broadcasting. */
export const or = binaryOp("or", (x, y) => (x || y ? 1 : 0), { logical: true });
