/**
 * Shared helpers of the fused ops (`fused_*.ts`): the ops that `src/graph/fuse.ts` puts in
 * place of the subgraphs torch_to_nnef leaves (RMSNorm, rotate-half RoPE, SiLU gate,
 * attention). Each runs in the WASM kernels when the session has them, in TS otherwise.
 */
import type { Kernels, RunArena } from "../../kernels/mod.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { contiguous, isStrided, stridedView } from "./common.ts";
import { asF32 } from "./matmul.ts";
import { copyF32 } from "../tensor/dtype.ts";

/** Row-major f32 items of `t` (copied only when strided or not f32). */
export function f32Items(t: Tensor): Float32Array {
  return asF32(contiguous(t));
}

/**
 * The items of x (1, H, S, D) when they lie as rows of tokens (S, H, D), as the transpose of a
 * (1, S, H, D) tensor leaves them; else null. The kernels take heads in that order.
 */
export function tokenMajorItems(x: Tensor): Float32Array | null {
  if (!isStrided(x) || x.shape.length !== 4 || !(x.data instanceof Float32Array)) return null;
  const [b, h, s, d] = x.shape as [number, number, number, number];
  const [, hs, ss, ds] = x.strides;
  if (b !== 1 || ds !== 1 || hs !== d || ss !== h * d) return null;
  return x.data.subarray(x.offset, x.offset + s * h * d);
}

/** Rows of tokens (S, H, D) as the (1, H, S, D) tensor they stand for: a view, not a copy. */
export function headMajorView(rows: Float32Array, h: number, s: number, d: number): Tensor {
  return stridedView("f32", [1, h, s, d], rows, [s * h * d, d, h * d, 1], 0);
}

/**
 * Runs `body` over `inputs` in the kernels' memory and returns the `outLength` floats it
 * wrote at `out`. Inputs that a kernel op of the same run left in `arena` are read in place,
 * others are copied into the activation arena (freed afterwards). The result stays in
 * `arena` when it fits, else it is copied out.
 */
export function inArena(
  kernels: Kernels,
  arena: RunArena | null | undefined,
  inputs: readonly Float32Array[],
  outLength: number,
  body: (offsets: number[], out: number) => void,
): Float32Array {
  const mark = kernels.mark();
  try {
    const kept = arena?.alloc(outLength * 4) ?? null;
    const offsets = inputs.map((x) => kernelOffset(kernels, arena, x));
    const out = kept ?? kernels.alloc(outLength * 4);
    body(offsets, out);
    return kept !== null ? arena!.view(kept, outLength) : copyF32(kernels.f32(out, outLength));
  } finally {
    kernels.reset(mark);
  }
}

/** Where `x` lies in the kernels' memory: in place when `arena` holds it, else a copy. */
export function kernelOffset(
  kernels: Kernels,
  arena: RunArena | null | undefined,
  x: Float32Array,
): number {
  if (arena?.holds(x)) return x.byteOffset;
  kernels.noteHostWrite();
  const o = kernels.alloc(x.length * 4);
  kernels.f32(o, x.length).set(x);
  return o;
}

/** A block table (or other i32 list) copied into the activation arena, freed with its mark. */
export function kernelInts(kernels: Kernels, values: readonly number[]): number {
  kernels.noteHostWrite();
  const o = kernels.alloc(values.length * 4, 4);
  new Int32Array(kernels.memory.buffer, o, values.length).set(values);
  return o;
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
      kernels.noteHostWrite();
      const slot = kernels.allocWeights(this.#items.length * 4);
      o = slot.offset;
      kernels.f32(o, this.#items.length).set(this.#items);
      this.#slots.set(kernels, o);
    }
    return o;
  }
}
