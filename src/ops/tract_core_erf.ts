import { unaryOp } from "./elementwise.ts";
/** Error function (Abramowitz-Stegun 7.1.26, absolute error below 1.5e-7). */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const poly = t *
    (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1 - poly * Math.exp(-a * a));
}

/** `tract_core_erf(x)`, item by item. */
export const tractCoreErf = unaryOp("tract_core_erf", erf);
