import { f16ToF32, f32ToF16 } from "../tensor/f16.ts";

/** Elements per Q4_0 block. */
export const Q40_BLOCK_LEN = 32;
/** Bytes per Q4_0 block: an f16 scale then 16 bytes of 4-bit codes. */
export const Q40_BLOCK_BYTES = 18;

/** How `quantizeQ40` picks the scale of a block. */
export interface QuantizeQ40Options {
  /**
   * `"tract"` (default; tract `quant_block`, ggml `quantize_row_q4_0_ref`): d = (the element
   * of largest magnitude, signed) / -8 in f32, codes from x * (1/d).
   * `"torch_to_nnef"` (t2n `QScalePerGroupF16`): d = f16(max |x| / -8), codes from
   * x * f16(1/d), so d is never positive.
   */
  readonly rule?: "tract" | "torch_to_nnef";
}

function blockCount(count: number): number {
  if (!Number.isInteger(count) || count < 0 || count % Q40_BLOCK_LEN !== 0) {
    throw new RangeError(`Q4_0 element count ${count} is not a multiple of ${Q40_BLOCK_LEN}`);
  }
  return count / Q40_BLOCK_LEN;
}

function checkBlocks(blocks: Uint8Array, count: number): number {
  const n = blockCount(count);
  if (blocks.length < n * Q40_BLOCK_BYTES) {
    throw new RangeError(
      `Q4_0 data holds ${blocks.length} bytes, ${count} elements need ${n * Q40_BLOCK_BYTES}`,
    );
  }
  return n;
}

/**
 * Dequantizes `count` elements from Q4_0 blocks in GGML layout: in block b, byte j of the
 * codes holds element 32b+j in its low nibble and element 32b+j+16 in its high nibble.
 */
export function dequantizeQ40(blocks: Uint8Array, count: number): Float32Array {
  const n = checkBlocks(blocks, count);
  const out = new Float32Array(count); // (count,)
  for (let b = 0; b < n; b++) {
    const at = b * Q40_BLOCK_BYTES;
    const d = f16ToF32(blocks[at]! | (blocks[at + 1]! << 8));
    const base = b * Q40_BLOCK_LEN;
    for (let j = 0; j < 16; j++) {
      const byte = blocks[at + 2 + j]!;
      out[base + j] = ((byte & 0x0f) - 8) * d;
      out[base + j + 16] = ((byte >> 4) - 8) * d;
    }
  }
  return out;
}

/** Quantizes values (a multiple of 32 of them) to Q4_0 blocks in GGML layout. */
export function quantizeQ40(values: Float32Array, options: QuantizeQ40Options = {}): Uint8Array {
  const n = blockCount(values.length);
  const t2n = options.rule === "torch_to_nnef";
  const out = new Uint8Array(n * Q40_BLOCK_BYTES);
  const codes = new Uint8Array(Q40_BLOCK_LEN);
  for (let b = 0; b < n; b++) {
    const base = b * Q40_BLOCK_LEN;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < Q40_BLOCK_LEN; j++) {
      const v = values[base + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    let dBits: number;
    let inverse: number;
    if (t2n) {
      dBits = f32ToF16(amax / -8);
      const d = f16ToF32(dBits);
      inverse = d === 0 ? 0 : f16ToF32(f32ToF16(1 / d));
    } else {
      const d = Math.fround(max / -8);
      dBits = f32ToF16(d);
      inverse = d === 0 ? 0 : Math.fround(1 / d);
    }
    for (let j = 0; j < Q40_BLOCK_LEN; j++) {
      const q = Math.floor(Math.fround(Math.fround(values[base + j]! * inverse) + 8.5));
      codes[j] = Math.min(15, Math.max(0, q));
    }
    const at = b * Q40_BLOCK_BYTES;
    out[at] = dBits & 0xff;
    out[at + 1] = dBits >> 8;
    for (let j = 0; j < 16; j++) out[at + 2 + j] = codes[j]! | (codes[j + 16]! << 4);
  }
  return out;
}

/**
 * Repacks Q4_0 blocks from tract's legacy nibble order (code 0x2040: element 2j in the low
 * nibble of byte j, 2j+1 in the high one) to GGML layout (code 0x3040).
 */
export function legacyQ40ToGgml(blocks: Uint8Array): Uint8Array {
  return repack(blocks, true);
}

/** Repacks Q4_0 blocks from GGML layout to tract's legacy nibble order. */
export function ggmlQ40ToLegacy(blocks: Uint8Array): Uint8Array {
  return repack(blocks, false);
}

function repack(blocks: Uint8Array, toGgml: boolean): Uint8Array {
  if (blocks.length % Q40_BLOCK_BYTES !== 0) {
    throw new RangeError(
      `Q4_0 data of ${blocks.length} bytes is not a whole number of ${Q40_BLOCK_BYTES}-byte blocks`,
    );
  }
  const out = new Uint8Array(blocks.length);
  const codes = new Uint8Array(Q40_BLOCK_LEN);
  for (let at = 0; at < blocks.length; at += Q40_BLOCK_BYTES) {
    out[at] = blocks[at]!;
    out[at + 1] = blocks[at + 1]!;
    for (let j = 0; j < 16; j++) {
      const byte = blocks[at + 2 + j]!;
      if (toGgml) {
        codes[2 * j] = byte & 0x0f;
        codes[2 * j + 1] = byte >> 4;
      } else {
        codes[j] = byte & 0x0f;
        codes[j + 16] = byte >> 4;
      }
    }
    for (let j = 0; j < 16; j++) {
      out[at + 2 + j] = toGgml
        ? codes[j]! | (codes[j + 16]! << 4)
        : codes[2 * j]! | (codes[2 * j + 1]! << 4);
    }
  }
  return out;
}
