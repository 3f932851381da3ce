import { unaryOp } from "./elementwise.ts";

/** `sqrt(x)`, item by item. */
export const sqrt = unaryOp("sqrt", (x) => Math.sqrt(x));
