import { binaryOp } from "./elementwise.ts";
import type { Dim } from "../tensor/dim.ts";
import { compareDims } from "./elementwise.ts";

function foldlt(x: Dim, y: Dim): Dim | null {
  return compareDims(x, y, "<");
}
/** `lt(x, y)` with NNEF broadcasting. */
export const lt = binaryOp("lt", (x, y) => (x < y ? 1 : 0), { logical: true, fold: foldlt });
