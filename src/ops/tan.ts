import { unaryOp } from "./elementwise.ts";

/** `tan(x)`, item by item. */
export const tan = unaryOp("tan", (x) => Math.tan(x));
