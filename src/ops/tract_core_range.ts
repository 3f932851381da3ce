import { type Tensor, tensor } from "../tensor/tensor.ts";
import { type Dim, dimAdd, dimDiv, dimMax, dimMul, dimSub } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";

function length(start: Dim, end: Dim, step: number): Dim {
  if (step === 0) throw new RangeError("tract_core_range: step is 0");
  const span = dimSub(end, start);
  if (step === 1) return dimMax(0, span);
  if (typeof span === "number") return Math.max(0, Math.ceil(span / step));
  return dimDiv(dimAdd(span, step - 1), step);
}

/** `tract_core_range(start, end, step)`: integers from start (included) to end (excluded). */
export const tractCoreRange: Op = {
  signature:
    "fragment tract_core_range(start: integer, end: integer, step: integer = 1) -> (output: tensor<integer>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const start = args.dim("start");
    const step = args.int("step");
    const n = length(start, args.dim("end"), step);
    if (typeof n === "number" && n <= 64) {
      const dims: Dim[] = [];
      for (let i = 0; i < n; i++) dims.push(dimAdd(start, dimMul(i, step)));
      return [{ dtype: "tdim", shape: [n], dims }];
    }
    return [{ dtype: "tdim", shape: [n] }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const start = args.int("start");
    const step = args.int("step");
    const n = length(start, args.int("end"), step) as number;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = start + i * step;
    return [tensor("tdim", [n], out)];
  },
};
