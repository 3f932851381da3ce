import { unaryOp } from "./elementwise.ts";

/** `log2(x)`, item by item. */
export const log2 = unaryOp("log2", (x) => Math.log2(x));
