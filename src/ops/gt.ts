import { binaryOp } from "./elementwise.ts";
import type { Dim } from "../tensor/dim.ts";
import { compareDims } from "./elementwise.ts";

function foldgt(x: Dim, y: Dim): Dim | null {
  return compareDims(x, y, ">");
}
/** `gt(x, y)` with NNEF broadcasting. */
export const gt = binaryOp("gt", (x, y) => (x > y ? 1 : 0), { logical: true, fold: foldgt });
