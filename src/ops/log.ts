import { unaryOp } from "./elementwise.ts";

/** `log(x)`, item by item. */
export const log = unaryOp("log", (x) => Math.log(x));
