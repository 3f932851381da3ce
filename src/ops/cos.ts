import { unaryOp } from "./elementwise.ts";

/** `cos(x)`, item by item. */
export const cos = unaryOp("cos", (x) => Math.cos(x));
