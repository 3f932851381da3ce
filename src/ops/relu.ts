import { unaryOp } from "./elementwise.ts";

/** `relu(x)`, item by item. */
export const relu = unaryOp("relu", (x) => (x > 0 ? x : 0));
