import { unaryOp } from "./elementwise.ts";

/** `ceil(x)`, item by item. */
export const ceil = unaryOp("ceil", (x) => Math.ceil(x));
