import { unaryOp } from "./elementwise.ts";

/** `sqr(x)`, item by item. */
export const sqr = unaryOp("sqr", (x) => x * x);
