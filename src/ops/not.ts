import { unaryOp } from "./elementwise.ts";

/** `not(x)`, item by item. */
export const not = unaryOp("not", (x) => (x ? 0 : 1));
