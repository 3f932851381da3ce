import { binaryOp } from "./elementwise.ts";
import type { Dim } from "../tensor/dim.ts";
import { compareDims } from "./elementwise.ts";

function foldge(x: Dim, y: Dim): Dim | null {
  return compareDims(x, y, ">=");
}
/** `ge(x, y)` with NNEF broadcasting. */
export const ge = binaryOp("ge", (x, y) => (x >= y ? 1 : 0), { logical: true, fold: foldge });
