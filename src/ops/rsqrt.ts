import { unaryOp } from "./elementwise.ts";

/** `rsqrt(x)`, item by item. */
export const rsqrt = unaryOp("rsqrt", (x) => 1 / Math.sqrt(x));
