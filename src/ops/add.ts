import { binaryOp } from "./elementwise.ts";
import { dimAdd } from "../tensor/dim.ts";
/** `add(x, y)` with NNEF broadcasting. */
export const add = binaryOp("add", (x, y) => x + y, { fold: dimAdd });
