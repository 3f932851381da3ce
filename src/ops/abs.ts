import { unaryOp } from "./elementwise.ts";
import { type Dim, dimNeg, provablyNonNegative } from "../tensor/dim.ts";

function dimAbs(x: Dim): Dim | null {
  if (typeof x === "number") return Math.abs(x);
  return provablyNonNegative(x) ? x : provablyNonNegative(dimNeg(x)) ? dimNeg(x) : null;
}
/** `abs(x)`, item by item. */
export const abs = unaryOp("abs", (x) => Math.abs(x), { fold: dimAbs });
