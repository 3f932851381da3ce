import assert from "node:assert/strict";
import { expBelowZero } from "./exp_below_zero.ts";

Deno.test("expBelowZero agrees with Math.exp to within 1e-8 over every scale a weight takes", () => {
  let worst = 0;
  for (let i = 0; i <= 200_000; i++) {
    const t = -103 * (i / 200_000) ** 2;
    const want = Math.exp(t);
    worst = Math.max(worst, Math.abs(expBelowZero(t) - want) / want);
  }
  assert.ok(worst < 1e-8, `largest relative error ${worst}`);
  assert.equal(expBelowZero(0), 1);
  assert.equal(expBelowZero(-0), 1);
});

Deno.test("expBelowZero stored as f32 is Math.exp's f32 down to 0, and 0 for -Infinity and NaN", () => {
  for (let t = -100; t > -110; t -= 0.001) {
    assert.equal(Math.fround(expBelowZero(t)), Math.fround(Math.exp(t)), `e^${t}`);
  }
  for (const t of [-104, -1e9, -Infinity, NaN]) assert.equal(expBelowZero(t), 0, `${t}`);
});
