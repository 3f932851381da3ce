import { unaryOp } from "./elementwise.ts";

/** `round(x)`, item by item. */
export const round = unaryOp("round", (x) => Math.sign(x) * Math.round(Math.abs(x)));
