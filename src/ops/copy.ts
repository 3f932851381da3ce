import { unaryOp } from "./elementwise.ts";

/** `copy(x)`, item by item. */
export const copy = unaryOp("copy", (x) => x);
