import { unaryOp } from "./elementwise.ts";

/** `square(x)`, item by item. */
export const square = unaryOp("square", (x) => x * x);
