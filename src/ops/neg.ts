import { unaryOp } from "./elementwise.ts";
import { dimNeg } from "../tensor/dim.ts";
/** `neg(x)`, item by item. */
export const neg = unaryOp("neg", (x) => -x, { fold: dimNeg });
