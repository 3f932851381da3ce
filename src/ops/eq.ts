import { binaryOp } from "./elementwise.ts";
import type { Dim } from "../tensor/dim.ts";
import { compareDims } from "./elementwise.ts";

function foldeq(x: Dim, y: Dim): Dim | null {
  return compareDims(x, y, "==");
}
/** `eq(x, y)` with NNEF broadcasting. */
export const eq = binaryOp("eq", (x, y) => (x === y ? 1 : 0), { logical: true, fold: foldeq });
