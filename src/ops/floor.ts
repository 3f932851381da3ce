import { unaryOp } from "./elementwise.ts";

/** `floor(x)`, item by item. */
export const floor = unaryOp("floor", (x) => Math.floor(x));
