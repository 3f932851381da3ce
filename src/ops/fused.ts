/**
 * Shared helpers of the fused ops (`fused_*.ts`): the ops that `src/graph/fuse.ts` puts in
 * place of the subgraphs torch_to_nnef leaves (RMSNorm, rotate-half RoPE, SiLU gate,
 * attention). Each runs in the WASM kernels when the session has them, in TS otherwise.
 */
import type { Kernels } from "../../kernels/mod.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { contiguous } from "./common.ts";
import { asF32 } from "./matmul.ts";

/** Row-major f32 items of `t` (copied only when strided or not f32). */
export function f32Items(t: Tensor): Float32Array {
  return asF32(contiguous(t));
}

/**
 * Runs `body` with `inputs` copied into the kernels' activation arena and returns the
 * `outLength` floats it wrote at the returned offset; the arena is freed afterwards.
 */
export function inArena(
  kernels: Kernels,
  inputs: readonly Float32Array[],
  outLength: number,
  body: (offsets: number[], out: number) => void,
): Float32Array {
  const mark = kernels.mark();
  try {
    const offsets = inputs.map((x) => {
      const o = kernels.alloc(x.length * 4);
      kernels.f32(o, x.length).set(x);
      return o;
    });
    const out = kernels.alloc(outLength * 4);
    body(offsets, out);
    return kernels.f32(out, outLength).slice();
  } finally {
    kernels.reset(mark);
  }
}

/** Offset of a constant tensor uploaded once per kernels instance. */
export class ConstantSlots {
  readonly #slots = new WeakMap<Kernels, number>();
  readonly #items: Float32Array;

  constructor(items: Float32Array) {
    this.#items = items;
  }

  offset(kernels: Kernels): number {
    let o = this.#slots.get(kernels);
    if (o === undefined) {
      const slot = kernels.allocWeights(this.#items.length * 4);
      o = slot.offset;
      kernels.f32(o, this.#items.length).set(this.#items);
      this.#slots.set(kernels, o);
    }
    return o;
  }
}
