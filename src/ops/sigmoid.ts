import { unaryOp } from "./elementwise.ts";

/** `sigmoid(x)`, item by item. */
export const sigmoid = unaryOp("sigmoid", (x) => 1 / (1 + Math.exp(-x)));
