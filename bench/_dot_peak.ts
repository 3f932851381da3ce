import type { Kernels } from "../kernels/mod.ts";

/** Bytes of operands the roofline passes over: small enough to stay in L1. */
const BYTES = 4096;

/**
 * GMAC/s of the dot-product roofline on the calling thread: `Kernels.dotPeak` making `rounds`
 * passes over 4 KiB held in L1, each call timed by `time` (its milliseconds). No Q4_0 x Q8_0
 * kernel of this build can beat it, since each must also unpack and scale. The arena is left
 * as it was.
 */
export function dotPeakGmacs(
  kernels: Kernels,
  rounds: number,
  time: (call: () => void) => number,
): number {
  const mark = kernels.mark();
  try {
    const at = kernels.alloc(BYTES);
    kernels.u8(at, BYTES).forEach((_, i, a) => (a[i] = (i * 37 + 11) & 127));
    // i8 products per 32 bytes and round (see `Kernels.dotPeak`).
    const macs = kernels.variant === "relaxed" ? 192 : 96;
    return (BYTES / 32) * rounds * macs / time(() => kernels.dotPeak(at, BYTES, rounds)) / 1e6;
  } finally {
    kernels.reset(mark);
  }
}
