import { unaryOp } from "./elementwise.ts";

/** `tanh(x)`, item by item. */
export const tanh = unaryOp("tanh", (x) => Math.tanh(x));
