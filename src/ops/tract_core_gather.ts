import { type DType, parseDType } from "../tensor/dtype.ts";
import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { dequantizeQ40 } from "../nnef/q40.ts";
import type { Kernels } from "../../kernels/mod.ts";
import type { Dim } from "../tensor/dim.ts";
import type { EvalContext, Fact, Op, OpArgs } from "./op.ts";
import { alloc, axisOf, concreteShape, f32Result, finish, knownDims, numeric } from "./common.ts";

/** Q4_0 weights interleaved in place into the kernels' `"rows8"` layout: where they are. */
const ROWS8 = new WeakMap<Tensor, { readonly kernels: Kernels; readonly offset: number }>();

/**
 * Records that the Q4_0 weight (n, k) at `offset` in `kernels` is interleaved in place into
 * the `"rows8"` layout (`loadModel` does so for the kernels' matmul; a classifier tied to the
 * embedding is also gathered): its gathers along axis 0 take their rows back out of that
 * layout (`Kernels.q4_0Rows8Row`), and any other gather of it is refused.
 */
export function gatherFromRows8(weight: Tensor, kernels: Kernels, offset: number): void {
  ROWS8.set(weight, { kernels, offset });
}

function outDtype(input: DType, datumType: string): DType {
  if (input !== "q40") return input;
  return datumType === "" ? "f32" : parseDType(datumType);
}

/**
 * `tract_core_gather(input, indices, axis, datum_type)`: output shape is
 * `input[:axis] + indices.shape + input[axis+1:]`; negative indices count from the end.
 * A Q4_0 input (embeddings) is dequantized row by row into `datum_type`, also from the
 * kernels' `"rows8"` layout (see `gatherFromRows8`).
 */
export const tractCoreGather: Op = {
  signature:
    "fragment tract_core_gather(input: tensor<?>, indices: tensor<integer>, axis: integer, datum_type: string = '') -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const x = args.tensor("input");
    const idx = args.tensor("indices");
    const axis = axisOf(args.int("axis"), x.shape.length, "tract_core_gather");
    const dtype = outDtype(x.dtype, args.str("datum_type"));
    const shape: Dim[] = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
    const kx = knownDims(x);
    const ki = knownDims(idx);
    if (kx && ki && x.shape.length === 1 && concreteShape(shape)) {
      const n = x.shape[0] as number;
      return [{
        dtype,
        shape,
        dims: ki.map((i) => kx[(i as number) < 0 ? (i as number) + n : (i as number)]!),
      }];
    }
    return [{ dtype, shape }];
  },
  eval(args: OpArgs<Tensor>, ctx?: EvalContext): Tensor[] {
    const x = args.tensor("input");
    const idx = args.tensor("indices");
    const axis = axisOf(args.int("axis"), x.shape.length, "tract_core_gather");
    const dtype = outDtype(x.dtype, args.str("datum_type"));
    const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
    const outer = volume(x.shape.slice(0, axis));
    const dim = x.shape[axis]!;
    const inner = volume(x.shape.slice(axis + 1));
    const ids = numeric(idx);
    const rows8 = x.dtype === "q40" ? ROWS8.get(x) : undefined;
    if (rows8 && (axis !== 0 || x.shape.length !== 2)) {
      throw new Error(
        `tract_core_gather: a Q4_0 weight in the rows8 layout (shape ${x.shape.join("x")}) ` +
          `is gathered only along axis 0, not ${axis}`,
      );
    }
    // f32 rows (embeddings) go where the kernel ops after them read them in place.
    const out = dtype === "f32" ? f32Result(ctx, volume(shape)) : alloc(dtype, volume(shape));
    if (ctx?.arena?.holds(out)) ctx.kernels?.noteHostWrite();
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < ids.length; j++) {
        let i = ids[j]!;
        if (i < 0) i += dim;
        if (i < 0 || i >= dim) {
          throw new RangeError(`tract_core_gather: index ${ids[j]} is out of range for dim ${dim}`);
        }
        const from = (o * dim + i) * inner;
        const to = (o * ids.length + j) * inner;
        if (x.dtype === "q40") {
          if (from % 32 !== 0 || inner % 32 !== 0) {
            throw new RangeError("tract_core_gather: Q4_0 rows must be whole blocks");
          }
          const blocks = rows8
            ? rows8.kernels.q4_0Rows8Row(rows8.offset, dim, inner, i)
            : (x.data as Uint8Array).subarray((from / 32) * 18, ((from + inner) / 32) * 18);
          out.set(dequantizeQ40(blocks, inner), to);
        } else {
          out.set((x.data as Float32Array).subarray(from, from + inner), to);
        }
      }
    }
    return [finish(tensor(dtype, shape, out))];
  },
};
