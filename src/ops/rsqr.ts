import { unaryOp } from "./elementwise.ts";

/** `rsqr(x)`, item by item. */
export const rsqr = unaryOp("rsqr", (x) => 1 / (x * x));
