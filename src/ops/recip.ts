import { unaryOp } from "./elementwise.ts";

/** `recip(x)`, item by item. */
export const recip = unaryOp("recip", (x) => 1 / x);
