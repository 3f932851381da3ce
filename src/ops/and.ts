import { binaryOp } from "./elementwise.ts";

/** `and(x, y)` with NNEF broadcasting. */
export const and = binaryOp("and", (x, y) => (x && y ? 1 : 0), { logical: true });
