import { binaryOp } from "./elementwise.ts";
import type { Dim } from "../tensor/dim.ts";
import { compareDims } from "./elementwise.ts";

function foldne(x: Dim, y: Dim): Dim | null {
  return compareDims(x, y, "!=");
}
/** `ne(x, y)` with NNEF broadcasting. */
export const ne = binaryOp("ne", (x, y) => (x !== y ? 1 : 0), { logical: true, fold: foldne });
