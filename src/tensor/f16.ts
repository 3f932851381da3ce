const F32_SCRATCH = new Float32Array(1);
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer);

/** Value of an IEEE binary16 bit pattern (`0..0xFFFF`), exactly. */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/**
 * Bit pattern of the binary16 nearest to `x` once rounded to f32, ties to even
 * (what `half::f16::from_f32` and numpy's `astype(float16)` give).
 */
export function f32ToF16(x: number): number {
  F32_SCRATCH[0] = x;
  const f = U32_SCRATCH[0]!;
  const sign = (f >>> 16) & 0x8000;
  const exponent = (f >>> 23) & 0xff;
  let mantissa = f & 0x7fffff;
  if (exponent === 0xff) {
    return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200 | (mantissa >>> 13));
  }
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mantissa & ((1 << shift) - 1);
    let out = mantissa >>> shift;
    if (rest > half || (rest === half && (out & 1) === 1)) out++;
    return sign | out;
  }
  const rest = mantissa & 0x1fff;
  let out = (e << 10) | (mantissa >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1) === 1)) out++;
  return sign | out;
}

/**
 * `f32ToF16` as a KV cache stores it: a subnormal result (magnitude below 2^-14) as zero of
 * its sign (the kernels read cached halves as floats, and subnormal ones cost x86 CPUs a
 * microcode assist each).
 */
export function f32ToF16Normal(x: number): number {
  return flushSubnormalF16(f32ToF16(x));
}

/** A binary16 bit pattern, subnormal ones as zero of their sign. */
export function flushSubnormalF16(bits: number): number {
  return (bits & 0x7c00) === 0 ? bits & 0x8000 : bits;
}

/** `x` rounded to the nearest binary16 value, as a number. */
export function roundToF16(x: number): number {
  return f16ToF32(f32ToF16(x));
}

let table: Float32Array | undefined;

/** The f32 value of every binary16 bit pattern (256 KiB, built on first use). */
export function f16Table(): Float32Array {
  if (table === undefined) {
    table = new Float32Array(0x10000); // (65536,)
    for (let i = 0; i < 0x10000; i++) table[i] = f16ToF32(i);
  }
  return table;
}

/** Widens binary16 bit patterns to f32 values. */
export function f16ArrayToF32(bits: Uint16Array): Float32Array {
  const values = f16Table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = values[bits[i]!]!;
  return out;
}

/** Narrows values to binary16 bit patterns, ties to even. */
export function f32ArrayToF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16(values[i]!);
  return out;
}
