/** Encoding a runtime tensor as a `.dat` tensor file, the way torch_to_nnef writes it. */
import type { DType } from "../tensor/dtype.ts";
import { f32ToF16 } from "../tensor/f16.ts";
import { type Tensor, volume } from "../tensor/tensor.ts";
import { Q40_BLOCK_LEN } from "./q40.ts";
import {
  MAX_RANK,
  RESERVED_OFFSET,
  TENSOR_HEADER_BYTES,
  type TensorFile,
  type TensorHeader,
  type TensorLayout,
  TRACT_CODES,
  TRACT_VENDOR,
  VARIABLE_BITS,
} from "./tensor_file.ts";

/** How `encodeTensor` lays items out. */
export interface EncodeTensorOptions {
  /** Bits per bool item: 1 (packed MSB-first, as Khronos writes; default) or 8 (as tract writes). */
  readonly boolBits?: 1 | 8;
}

/**
 * Encodes a runtime tensor as a `.dat` file the way torch_to_nnef writes it: floats code 0,
 * unsigned ints code 1, signed ints (and tdim, as i64) code 4, bool code 5, strings and
 * Q4_0 (GGML layout, full logical shape in the header) with tract's vendor codes.
 *
 * @throws {RangeError} rank above 8, or a Q4_0 shape tract cannot read
 */
export function encodeTensor(t: Tensor, options: EncodeTensorOptions = {}): TensorFile {
  const dims = [...t.shape];
  if (dims.length > MAX_RANK) {
    throw new RangeError(`Cannot encode a tensor of rank ${dims.length}: the limit is ${MAX_RANK}`);
  }
  const n = volume(dims);
  let vendor = 0;
  let itemType: number;
  let bitsPerItem: number;
  let payload: Uint8Array;
  let dataLength: number | undefined;
  let layout: TensorLayout = "plain";
  let dtype: DType = t.dtype;
  switch (t.dtype) {
    case "q40": {
      const k = n / (dims[0] ?? 1);
      if (dims.length < 2 || (n !== 0 && k % Q40_BLOCK_LEN !== 0)) {
        throw new RangeError(
          `Cannot encode Q4_0 of shape [${
            dims.join(", ")
          }]: need rank >= 2 and an inner size that is a multiple of ${Q40_BLOCK_LEN}`,
        );
      }
      vendor = TRACT_VENDOR;
      itemType = TRACT_CODES.q40;
      bitsPerItem = VARIABLE_BITS;
      payload = (t.data as Uint8Array).slice();
      layout = "q40";
      break;
    }
    case "string": {
      const encoder = new TextEncoder();
      const items = (t.data as string[]).map((s) => encoder.encode(s));
      payload = new Uint8Array(items.reduce((sum, b) => sum + 4 + b.length, 0));
      const view = new DataView(payload.buffer);
      let at = 0;
      for (const b of items) {
        view.setUint32(at, b.length, true);
        payload.set(b, at + 4);
        at += 4 + b.length;
      }
      vendor = TRACT_VENDOR;
      itemType = TRACT_CODES.string;
      bitsPerItem = VARIABLE_BITS;
      // tract writes n * size_of::<String>() here; readers ignore it.
      dataLength = n * 24;
      layout = "string";
      break;
    }
    case "bool": {
      const data = t.data as Uint8Array;
      itemType = 5;
      if (options.boolBits === 8) {
        bitsPerItem = 8;
        payload = data.map((v) => (v === 0 ? 0 : 1));
      } else {
        bitsPerItem = 1;
        layout = "bits";
        payload = new Uint8Array(Math.ceil(n / 8));
        for (let i = 0; i < n; i++) if (data[i]) payload[i >> 3]! |= 0x80 >> (i & 7);
      }
      break;
    }
    default: {
      const plain = encodePlain(t.dtype, t.data as Float32Array | Float64Array, n);
      itemType = plain.code;
      bitsPerItem = plain.bits;
      payload = plain.payload;
      dtype = plain.dtype;
    }
  }
  const header: TensorHeader = {
    version: [1, 0],
    dataLength: dataLength ?? payload.length,
    rank: dims.length,
    dims,
    bitsPerItem,
    itemType,
    vendor,
    dtype,
    layout,
    reserved: new Uint8Array(TENSOR_HEADER_BYTES - RESERVED_OFFSET),
  };
  return { header, payload };
}

interface PlainEncoding {
  readonly code: number;
  readonly bits: number;
  readonly dtype: DType;
  readonly payload: Uint8Array;
}

function encodePlain(dtype: DType, data: Float32Array | Float64Array, n: number): PlainEncoding {
  const stored: DType = dtype === "tdim" ? "i64" : dtype;
  const bits = Number(stored.slice(1));
  const code = stored[0] === "f" ? 0 : stored[0] === "u" ? 1 : 4;
  const payload = new Uint8Array((n * bits) / 8);
  const view = new DataView(payload.buffer);
  for (let i = 0; i < n; i++) {
    const v = data[i]!;
    switch (stored) {
      case "f16":
        view.setUint16(2 * i, f32ToF16(v), true);
        break;
      case "f32":
        view.setFloat32(4 * i, v, true);
        break;
      case "f64":
        view.setFloat64(8 * i, v, true);
        break;
      case "u8":
        view.setUint8(i, v);
        break;
      case "i8":
        view.setInt8(i, v);
        break;
      case "u16":
        view.setUint16(2 * i, v, true);
        break;
      case "i16":
        view.setInt16(2 * i, v, true);
        break;
      case "u32":
        view.setUint32(4 * i, v, true);
        break;
      case "i32":
        view.setInt32(4 * i, v, true);
        break;
      case "u64":
        view.setBigUint64(8 * i, BigInt(v), true);
        break;
      case "i64":
        view.setBigInt64(8 * i, BigInt(v), true);
        break;
      default:
        throw new TypeError(`No plain .dat encoding for item type ${dtype}`);
    }
  }
  return { code, bits, dtype: stored, payload };
}
