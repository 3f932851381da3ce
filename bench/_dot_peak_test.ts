import assert from "node:assert/strict";
import { loadKernels } from "../kernels/mod.ts";
import { dotPeakGmacs } from "./_dot_peak.ts";

Deno.test("dotPeakGmacs counts the roofline's products over the time it is given, and frees its operands", async () => {
  for (const variant of ["relaxed", "simd128"] as const) {
    using kernels = await loadKernels({ threads: 1, variant });
    const mark = kernels.mark();
    let calls = 0;
    // A timer that runs the call once and says it took 1 ms: 128 blocks x 2 rounds x products.
    const gmacs = dotPeakGmacs(kernels, 2, (call) => (call(), calls++, 1));
    assert.equal(gmacs, (128 * 2 * (variant === "relaxed" ? 192 : 96)) / 1e6, variant);
    assert.equal(calls, 1);
    assert.equal(kernels.mark(), mark, `${variant}: the arena is as it was`);
  }
});
