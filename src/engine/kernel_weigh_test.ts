import assert from "node:assert/strict";
import { loadKernels } from "../../kernels/mod.ts";
import { kernelWeigh } from "./kernel_weigh.ts";
import { Sampler, type SamplingOptions } from "./sampler.ts";

/** A vocabulary's logits: spread like a model's, a few masked (-Infinity) and one NaN. */
function vocabLogits(n: number, seed: number): Float32Array {
  let s = seed;
  const random = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const x = Float32Array.from({ length: n }, () => (random() - 0.9) * 30);
  for (let i = 0; i < n; i += 97) x[i] = -Infinity;
  x[5] = NaN;
  return x;
}

Deno.test("kernelWeigh weighs a vocabulary as the TypeScript default does, and draws the same tokens", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const weigh = kernelWeigh(kernels);
    for (const n of [49_152, 32_003]) {
      const x = vocabLogits(n, n);
      let max = -Infinity;
      for (const v of x) if (v > max) max = v;
      const w = new Float32Array(n);
      const total = weigh(x, max, 1 / 0.7, w);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const d = (x[i]! - max) / 0.7;
        const want = Math.fround(Math.exp(d));
        // The kernels take d in f32: its rounding, relative to d, moves e^d by as much times d.
        const error = (3e-7 - 1.2e-7 * d) * want + 1e-45;
        if (Number.isNaN(x[i]!) || x[i] === -Infinity) assert.equal(w[i], 0, `item ${i}`);
        else assert.ok(Math.abs(w[i]! - want) <= error, `item ${i}: ${w[i]} vs ${want}`);
        sum += w[i]!;
      }
      assert.ok(Math.abs(total - sum) <= 1e-12 * sum, `sum ${total} vs ${sum}`);
      const options: SamplingOptions[] = [
        { temperature: 1 },
        { temperature: 0.7, topP: 0.9 },
        { temperature: 1.3, minP: 0.02 },
        { temperature: 1, mirostat: { version: 2, tau: 5, eta: 0.1 } },
      ];
      for (const o of options) {
        const inKernels = new Sampler({ ...o, seed: 3 }, { weigh });
        const inTs = new Sampler({ ...o, seed: 3 });
        const a = Array.from({ length: 100 }, () => inKernels.sample(x));
        const b = Array.from({ length: 100 }, () => inTs.sample(x));
        assert.deepEqual(a, b, JSON.stringify(o));
        assert.ok(a.every((id) => x[id]! > -Infinity), JSON.stringify(o));
      }
    }
  } finally {
    kernels.close();
  }
});
