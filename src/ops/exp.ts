import { unaryOp } from "./elementwise.ts";

/** `exp(x)`, item by item. */
export const exp = unaryOp("exp", (x) => Math.exp(x));
