import { binaryOp } from "./elementwise.ts";
import { type Dim, dimDiv } from "../tensor/dim.ts";

/** Integer division truncates toward zero, as tract divides integers and TDims. */
function truncDiv(x: number, y: number): number {
  return y === 0 ? 0 : Math.trunc(x / y);
}

function foldDiv(x: Dim, y: Dim): Dim | null {
  try {
    return dimDiv(x, y);
  } catch {
    return null;
  }
}
/** `div(x, y)` with NNEF broadcasting. */
export const div = binaryOp("div", (x, y) => x / y, { int: truncDiv, fold: foldDiv });
