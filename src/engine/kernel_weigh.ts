/**
 * The sampler's weighing of the whole vocabulary (`Weigh`) in the kernels: e^x four items at a
 * time, where TypeScript takes one `expBelowZero` call an item (49,152 tokens: 85-94 us a draw,
 * copies included, against 290-300).
 */
import type { Kernels } from "../../kernels/mod.ts";
import type { Weigh } from "./sampler.ts";

/**
 * A `Weigh` over `kernels`: the logits are copied into a scratch of theirs, weighed there, and
 * the weights copied out. Sampling runs between steps, so the scratch is never in use twice.
 */
export function kernelWeigh(kernels: Kernels): Weigh {
  return (x, max, scale, w) => {
    const n = x.length;
    // (total f64, padded to 16) (x (n) f32, padded to 16) (w (n) f32)
    const span = 16 + Math.ceil(n / 4) * 16;
    const total = kernels.scratch("sampler weights", span + n * 4);
    const xAt = total + 16;
    const wAt = total + span;
    kernels.f32(xAt, n).set(x);
    kernels.weighLogits(xAt, wAt, n, max, scale, total);
    w.set(kernels.f32(wAt, n));
    return new Float64Array(kernels.memory.buffer, total, 1)[0]!;
  };
}
