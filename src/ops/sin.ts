import { unaryOp } from "./elementwise.ts";

/** `sin(x)`, item by item. */
export const sin = unaryOp("sin", (x) => Math.sin(x));
