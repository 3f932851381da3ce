/**
 * llama.cpp's quantized blocks read back to f32: the 32-value types (Q4_1, Q5_0, Q5_1, Q8_0:
 * `d * q` or `d * q + m`) and the k-quants: super-blocks of 256 values, each with f16 scales
 * and sub-block scales of their own. Q4_K and Q5_K hold 8 sub-blocks of 32 values as
 * `d * scale * q - dmin * min`, their 6-bit scales and mins packed in 12 bytes; Q6_K holds 16
 * sub-blocks of 16 values as `d * scale * (q - 32)`, its scales 8-bit; Q2_K 16 of 2-bit
 * values with 4-bit scales and mins, Q3_K 16 of 3-bit values with 6-bit scales. Q2_K to
 * Q5_K files (`_S`, `_M`) mix them. IQ4_NL and IQ4_XS map nibbles to 16 levels denser near
 * zero, IQ4_XS with a 6-bit scale per 32 values. Every step rounds to f32 as ggml's C does.
 */
import { f16ToF32 } from "../tensor/f16.ts";

/** Values per super-block. */
export const QK_K = 256;

/** Bytes of a super-block of each 256-value type. */
export const KQUANT_BLOCK_BYTES = {
  q2k: 84,
  q3k: 110,
  q4k: 144,
  q5k: 176,
  q6k: 210,
  iq4xs: 136,
} as const;

const f32 = Math.fround;

function f16At(bytes: Uint8Array, at: number): number {
  return f16ToF32(bytes[at]! | (bytes[at + 1]! << 8));
}

/**
 * The f32 values of `bytes`, blocks of `blockBytes` bytes holding `values` values each:
 * `fill(out, at, y)` writes the block at byte `at` into out[y..y + values].
 */
function dequantizeBlocks(
  bytes: Uint8Array,
  blockBytes: number,
  values: number,
  fill: (out: Float32Array, at: number, y: number) => void,
): Float32Array {
  const blocks = bytes.length / blockBytes;
  const out = new Float32Array(blocks * values); // (blocks * values,)
  for (let b = 0; b < blocks; b++) fill(out, b * blockBytes, b * values);
  return out;
}

/** Sub-block `j`'s 6-bit scale and min from the 12 packed bytes at `at`. */
function scaleMin(bytes: Uint8Array, at: number, j: number): [number, number] {
  const q = (i: number) => bytes[at + i]!;
  if (j < 4) return [q(j) & 63, q(j + 4) & 63];
  return [(q(j + 4) & 0xf) | ((q(j - 4) >> 6) << 4), (q(j + 4) >> 4) | ((q(j) >> 6) << 4)];
}

/**
 * Q4_K and Q5_K: `bits5` adds Q5_K's fifth bit from its `qh` bytes. Layout: d, dmin (f16),
 * scales (12 bytes), [qh (32 bytes)], qs (128 bytes: two sub-blocks' nibbles a byte).
 */
function dequantizeScaleMin(bytes: Uint8Array, blockBytes: number, bits5: boolean): Float32Array {
  return dequantizeBlocks(bytes, blockBytes, QK_K, (out, at, y) => {
    const d = f16At(bytes, at);
    const dmin = f16At(bytes, at + 2);
    const qh = at + 16;
    const qs = at + (bits5 ? 48 : 16);
    for (let j = 0; j < QK_K / 64; j++) {
      const [s1, m1] = scaleMin(bytes, at + 4, 2 * j);
      const [s2, m2] = scaleMin(bytes, at + 4, 2 * j + 1);
      const [d1, min1, d2, min2] = [f32(d * s1), f32(dmin * m1), f32(d * s2), f32(dmin * m2)];
      const [u1, u2] = [1 << (2 * j), 2 << (2 * j)];
      for (let l = 0; l < 32; l++) {
        const q = bytes[qs + 32 * j + l]!;
        const high = bits5 ? bytes[qh + l]! : 0;
        out[y + 64 * j + l] = f32(f32(d1 * ((q & 0xf) + (high & u1 ? 16 : 0))) - min1);
        out[y + 64 * j + 32 + l] = f32(f32(d2 * ((q >> 4) + (high & u2 ? 16 : 0))) - min2);
      }
    }
  });
}

/** Q4_K super-blocks (144 bytes each) as f32. */
export function dequantizeQ4K(bytes: Uint8Array): Float32Array {
  return dequantizeScaleMin(bytes, KQUANT_BLOCK_BYTES.q4k, false);
}

/** Q5_K super-blocks (176 bytes each) as f32. */
export function dequantizeQ5K(bytes: Uint8Array): Float32Array {
  return dequantizeScaleMin(bytes, KQUANT_BLOCK_BYTES.q5k, true);
}

/**
 * Q6_K super-blocks (210 bytes each) as f32. Layout: ql (128 bytes: low nibbles), qh (64
 * bytes: two high bits each), scales (16 int8), d (f16).
 */
export function dequantizeQ6K(bytes: Uint8Array): Float32Array {
  return dequantizeBlocks(bytes, KQUANT_BLOCK_BYTES.q6k, QK_K, (out, at, y0) => {
    const d = f16At(bytes, at + 208);
    const scale = (i: number) => f32(d * ((bytes[at + 192 + i]! << 24) >> 24));
    for (let half = 0; half < 2; half++) {
      const [ql, qh, sc, y] = [
        at + 64 * half,
        at + 128 + 32 * half,
        8 * half,
        y0 + 128 * half,
      ];
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const [low, high] = [bytes[ql + l]!, bytes[qh + l]!];
        const low2 = bytes[ql + 32 + l]!;
        const q1 = ((low & 0xf) | ((high & 3) << 4)) - 32;
        const q2 = ((low2 & 0xf) | (((high >> 2) & 3) << 4)) - 32;
        const q3 = ((low >> 4) | (((high >> 4) & 3) << 4)) - 32;
        const q4 = ((low2 >> 4) | (((high >> 6) & 3) << 4)) - 32;
        out[y + l] = f32(scale(sc + is) * q1);
        out[y + 32 + l] = f32(scale(sc + is + 2) * q2);
        out[y + 64 + l] = f32(scale(sc + is + 4) * q3);
        out[y + 96 + l] = f32(scale(sc + is + 6) * q4);
      }
    }
  });
}

/**
 * Q2_K super-blocks (84 bytes each) as f32. Layout: scales (16 bytes: a 4-bit scale low, a
 * 4-bit min high), qs (64 bytes: four 2-bit values a byte), d, dmin (f16).
 */
export function dequantizeQ2K(bytes: Uint8Array): Float32Array {
  return dequantizeBlocks(bytes, KQUANT_BLOCK_BYTES.q2k, QK_K, (out, at, y0) => {
    const d = f16At(bytes, at + 80);
    const dmin = f16At(bytes, at + 82);
    let [y, is] = [y0, 0];
    for (let half = 0; half < 2; half++) {
      const q = at + 16 + 32 * half;
      for (let shift = 0; shift < 8; shift += 2) {
        for (const offset of [0, 16]) {
          const sc = bytes[at + is++]!;
          const [dl, ml] = [f32(d * (sc & 0xf)), f32(dmin * (sc >> 4))];
          for (let l = 0; l < 16; l++) {
            out[y++] = f32(f32(dl * ((bytes[q + offset + l]! >> shift) & 3)) - ml);
          }
        }
      }
    }
  });
}

/**
 * Q3_K super-blocks (110 bytes each) as f32. Layout: hmask (32 bytes: a value's third bit,
 * clear for 4 less), qs (64 bytes: four 2-bit values a byte), scales (12 bytes: sixteen 6-bit
 * scales, offset by 32), d (f16).
 */
export function dequantizeQ3K(bytes: Uint8Array): Float32Array {
  const scales = new Int32Array(16);
  return dequantizeBlocks(bytes, KQUANT_BLOCK_BYTES.q3k, QK_K, (out, at, y0) => {
    const d = f16At(bytes, at + 108);
    // Scale i: its low four bits from byte i % 8 (low or high nibble by i / 8), its top two
    // from byte 8 + i % 4 (bits 2 (i / 4) and up).
    for (let i = 0; i < 16; i++) {
      const low = (bytes[at + 96 + (i % 8)]! >> (4 * (i >> 3))) & 0xf;
      const high = (bytes[at + 104 + (i % 4)]! >> (2 * (i >> 2))) & 3;
      scales[i] = (low | (high << 4)) - 32;
    }
    let [y, is, m] = [y0, 0, 1];
    for (let half = 0; half < 2; half++) {
      const q = at + 32 + 32 * half;
      for (let shift = 0; shift < 8; shift += 2) {
        for (const offset of [0, 16]) {
          const dl = f32(d * scales[is++]!);
          for (let l = 0; l < 16; l++) {
            const low = (bytes[q + offset + l]! >> shift) & 3;
            const value = low - (bytes[at + offset + l]! & m ? 0 : 4);
            out[y++] = f32(dl * value);
          }
        }
        m <<= 1;
      }
    }
  });
}

/** Bytes of a 32-value block of the older types. */
export const BLOCK32_BYTES = { q41: 20, q50: 22, q51: 24, q80: 34, iq4nl: 18 } as const;

/** Q8_0 blocks (34 bytes each: d (f16), 32 int8) as f32. */
export function dequantizeQ80(bytes: Uint8Array): Float32Array {
  return dequantizeBlocks(bytes, BLOCK32_BYTES.q80, 32, (out, at, y) => {
    const d = f16At(bytes, at);
    for (let j = 0; j < 32; j++) out[y + j] = f32(((bytes[at + 2 + j]! << 24) >> 24) * d);
  });
}

/**
 * Blocks of 32 values of 4 or 5 bits: d (and `min`, m) as f16, then (`bits5`) a u32 of fifth
 * bits, then 16 bytes of nibbles (values j and j + 16 in byte j). Q5_0 centers its values by
 * 16; Q4_1 and Q5_1 add m.
 */
function dequantizeBlock32(bytes: Uint8Array, blockBytes: number, min: boolean, bits5: boolean) {
  const center = bits5 && !min ? 16 : 0;
  return dequantizeBlocks(bytes, blockBytes, 32, (out, at, y) => {
    const d = f16At(bytes, at);
    const m = min ? f16At(bytes, at + 2) : 0;
    const high = at + (min ? 4 : 2);
    const qh = bits5
      ? (bytes[high]! | (bytes[high + 1]! << 8) | (bytes[high + 2]! << 16) |
        (bytes[high + 3]! << 24)) >>> 0
      : 0;
    const qs = high + (bits5 ? 4 : 0);
    for (let j = 0; j < 16; j++) {
      const q = bytes[qs + j]!;
      const x0 = ((q & 0xf) | (((qh >>> j) << 4) & 0x10)) - center;
      const x1 = ((q >> 4) | ((qh >>> (j + 12)) & 0x10)) - center;
      out[y + j] = min ? f32(f32(x0 * d) + m) : f32(x0 * d);
      out[y + j + 16] = min ? f32(f32(x1 * d) + m) : f32(x1 * d);
    }
  });
}

/** Q4_1 blocks (20 bytes each: d, m, 16 bytes of nibbles) as f32: `d * q + m`. */
export function dequantizeQ41(bytes: Uint8Array): Float32Array {
  return dequantizeBlock32(bytes, BLOCK32_BYTES.q41, true, false);
}

/** Q5_0 blocks (22 bytes each: d, fifth bits, nibbles) as f32: `d * (q - 16)`. */
export function dequantizeQ50(bytes: Uint8Array): Float32Array {
  return dequantizeBlock32(bytes, BLOCK32_BYTES.q50, false, true);
}

/** Q5_1 blocks (24 bytes each: d, m, fifth bits, nibbles) as f32: `d * q + m`. */
export function dequantizeQ51(bytes: Uint8Array): Float32Array {
  return dequantizeBlock32(bytes, BLOCK32_BYTES.q51, true, true);
}

/** The 16 levels of IQ4_NL's nibbles, denser near zero. */
const IQ4_NL_LEVELS = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/**
 * IQ4_NL blocks (18 bytes each: d (f16), 16 bytes of nibbles) as f32: `d * level[q]` (what
 * llama.cpp writes where a Q2_K or Q3_K file's row is no multiple of 256).
 */
export function dequantizeIQ4NL(bytes: Uint8Array): Float32Array {
  return dequantizeBlocks(bytes, BLOCK32_BYTES.iq4nl, 32, (out, at, y) => {
    levels32(bytes, at + 2, f16At(bytes, at), out, y);
  });
}

/** out[y..y + 32] = dl * level[q] of the 16 bytes of nibbles at qs, low nibbles first. */
function levels32(bytes: Uint8Array, qs: number, dl: number, out: Float32Array, y: number) {
  for (let j = 0; j < 16; j++) {
    const q = bytes[qs + j]!;
    out[y + j] = f32(dl * IQ4_NL_LEVELS[q & 0xf]!);
    out[y + j + 16] = f32(dl * IQ4_NL_LEVELS[q >> 4]!);
  }
}

/**
 * IQ4_XS super-blocks (136 bytes each: d (f16), the scales' high bits (2 bytes: 2 bits a
 * sub-block), their low bits (4 bytes: a nibble a sub-block), 128 bytes of nibbles) as f32:
 * 8 sub-blocks of 32 values `d * (scale - 32) * level[q]`, low nibbles the first 16 values.
 */
export function dequantizeIQ4XS(bytes: Uint8Array): Float32Array {
  return dequantizeBlocks(bytes, KQUANT_BLOCK_BYTES.iq4xs, QK_K, (out, at, y) => {
    const d = f16At(bytes, at);
    const high = bytes[at + 2]! | (bytes[at + 3]! << 8);
    for (let s = 0; s < QK_K / 32; s++) {
      const low = (bytes[at + 4 + (s >> 1)]! >> (4 * (s & 1))) & 0xf;
      const dl = f32(d * ((low | (((high >> (2 * s)) & 3) << 4)) - 32));
      levels32(bytes, at + 8 + 16 * s, dl, out, y + 32 * s);
    }
  });
}
