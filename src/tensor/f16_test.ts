import assert from "node:assert/strict";
import {
  f16ArrayToF32,
  f16ToF32,
  f32ArrayToF16,
  f32ToF16,
  f32ToF16Normal,
  roundToF16,
} from "./f16.ts";

Deno.test("f16ToF32 decodes normals, subnormals, zeros, infinities and NaN", () => {
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0xc3c0), -3.875);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24);
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.equal(f16ToF32(0x7c00), Infinity);
  assert.equal(f16ToF32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
});

Deno.test("f32ToF16 rounds to nearest, ties to even", () => {
  assert.equal(f32ToF16(1), 0x3c00);
  assert.equal(f32ToF16(-3.875), 0xc3c0);
  // 1 + 2^-11 is halfway between 1 and the next f16: ties go to the even mantissa (1).
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00);
  // 1 + 3 * 2^-11 is halfway between odd 0x3c01 and even 0x3c02.
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(f32ToF16(1 + 2 ** -11 + 2 ** -20), 0x3c01);
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(65520), 0x7c00);
  assert.equal(f32ToF16(1e10), 0x7c00);
  assert.equal(f32ToF16(2 ** -24), 0x0001);
  assert.equal(f32ToF16(2 ** -25), 0x0000);
  assert.equal(f32ToF16(3 * 2 ** -26), 0x0001);
  assert.equal(f32ToF16(-0), 0x8000);
  assert.equal(f32ToF16(NaN) & 0x7e00, 0x7e00);
});

Deno.test("f32ToF16 inverts f16ToF32 on every finite pattern", () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    const exponent = (bits >> 10) & 0x1f;
    if (exponent === 0x1f) continue;
    assert.equal(f32ToF16(f16ToF32(bits)), bits);
  }
});

Deno.test("f16ArrayToF32 and f32ArrayToF16 convert in bulk", () => {
  const values = [0.1, -2.5, 1000.25, 6e-8];
  const bits = f32ArrayToF16(values);
  assert.deepEqual([...f16ArrayToF32(bits)], values.map((v) => Math.fround(roundToF16(v))));
});

Deno.test("f32ToF16Normal keeps every normal half and stores subnormal ones as signed zero", () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    const exponent = (bits >> 10) & 0x1f;
    if (exponent === 0x1f) continue;
    const want = exponent === 0 ? bits & 0x8000 : bits;
    assert.equal(f32ToF16Normal(f16ToF32(bits)), want, `pattern ${bits.toString(16)}`);
  }
  // Just below 2^-14, rounding up to the least normal half: kept.
  assert.equal(f32ToF16Normal(2 ** -14 * (1 - 2 ** -13)), 0x0400);
  assert.equal(f32ToF16Normal(-1e-6), 0x8000);
});
