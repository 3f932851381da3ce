import { binaryOp } from "./elementwise.ts";
import type { Dim } from "../tensor/dim.ts";
import { compareDims } from "./elementwise.ts";

function foldle(x: Dim, y: Dim): Dim | null {
  return compareDims(x, y, "<=");
}
/** `le(x, y)` with NNEF broadcasting. */
export const le = binaryOp("le", (x, y) => (x <= y ? 1 : 0), { logical: true, fold: foldle });
