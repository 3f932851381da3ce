import assert from "node:assert/strict";
import { dequantizeQ40, ggmlQ40ToLegacy, legacyQ40ToGgml, quantizeQ40 } from "./q40.ts";

// d = f16 0xC3C0 = -3.875; code bytes 0x80, 0x91, ..., 0xF7 (low nibble j - 8 mod 16 pattern).
function handBlock(): Uint8Array {
  const block = new Uint8Array(18);
  block[0] = 0xc0;
  block[1] = 0xc3;
  for (let j = 0; j < 16; j++) block[2 + j] = (j & 0x0f) | ((15 - j) << 4);
  return block;
}

Deno.test("dequantizeQ40 decodes a GGML block: low nibbles are elements 0..15, high nibbles 16..31", () => {
  const values = dequantizeQ40(handBlock(), 32);
  // element j (j < 16) has code j: (j - 8) * -3.875; element j + 16 has code 15 - j.
  const expected = [
    31,
    27.125,
    23.25,
    19.375,
    15.5,
    11.625,
    7.75,
    3.875,
    -0,
    -3.875,
    -7.75,
    -11.625,
    -15.5,
    -19.375,
    -23.25,
    -27.125,
    -27.125,
    -23.25,
    -19.375,
    -15.5,
    -11.625,
    -7.75,
    -3.875,
    -0,
    3.875,
    7.75,
    11.625,
    15.5,
    19.375,
    23.25,
    27.125,
    31,
  ];
  assert.deepEqual([...values], expected);
});

Deno.test("dequantizeQ40 rejects a count that is not a whole number of blocks", () => {
  assert.throws(() => dequantizeQ40(handBlock(), 33), /not a multiple of 32/);
  assert.throws(() => dequantizeQ40(handBlock(), 64), /18 bytes, 64 elements need 36/);
});

Deno.test("legacyQ40ToGgml moves element 2j+1 from byte j's high nibble to its GGML place", () => {
  // The legacy block of q40_linear_followed_slice/linear__var0_q4_0.dat (nnef-format.md §2.5).
  const legacy = Uint8Array.from([
    0xc0,
    0xc3,
    0x88,
    0x77,
    0x77,
    0x66,
    0x66,
    0x55,
    0x55,
    0x44,
    0x44,
    0x33,
    0x33,
    0x22,
    0x22,
    0x11,
    0x11,
    0x00,
  ]);
  const ggml = legacyQ40ToGgml(legacy);
  const codes = [
    8,
    8,
    7,
    7,
    7,
    7,
    6,
    6,
    6,
    6,
    5,
    5,
    5,
    5,
    4,
    4,
    4,
    4,
    3,
    3,
    3,
    3,
    2,
    2,
    2,
    2,
    1,
    1,
    1,
    1,
    0,
    0,
  ];
  assert.deepEqual([...dequantizeQ40(ggml, 32)], codes.map((q) => (q - 8) * -3.875));
  assert.deepEqual(ggmlQ40ToLegacy(ggml), legacy);
});

Deno.test("quantizeQ40 uses the signed largest element over -8 as scale (tract rule)", () => {
  const values = new Float32Array(32);
  for (let j = 0; j < 32; j++) values[j] = j - 8; // largest magnitude 23 is positive
  const block = quantizeQ40(values);
  const d = -23 / 8;
  assert.equal(dequantizeQ40(block, 32)[31], 23);
  const back = dequantizeQ40(block, 32);
  for (let j = 0; j < 32; j++) assert.ok(Math.abs(back[j]! - values[j]!) <= Math.abs(d) / 2 + 1e-3);
  // An all-zero block gets d = 0 / -8 = -0 (f16 0x8000) and codes 8, as tract writes it.
  assert.deepEqual(
    quantizeQ40(new Float32Array(32)),
    Uint8Array.from([0x00, 0x80, ...new Array(16).fill(0x88)]),
  );
});

Deno.test("quantizeQ40 with the torch_to_nnef rule keeps the scale negative", () => {
  const values = new Float32Array(32).fill(0.5);
  values[3] = 4;
  const block = quantizeQ40(values, { rule: "torch_to_nnef" });
  assert.equal(block[1]! & 0x80, 0x80);
  // t2n: d = -0.5, codes floor(x * -2 + 8.5): 4 -> 0 ; 0.5 -> 7
  assert.equal(dequantizeQ40(block, 32)[3], 4);
  assert.equal(dequantizeQ40(block, 32)[0], 0.5);
  const tract = quantizeQ40(values);
  assert.deepEqual(tract, block);
});
