import { unaryOp } from "./elementwise.ts";

/** `sign(x)`, item by item. */
export const sign = unaryOp("sign", (x) => Math.sign(x));
