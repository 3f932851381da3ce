/** Decoding the payload of a `.dat` tensor file into a runtime tensor. */
import type { DType } from "../tensor/dtype.ts";
import { f16ArrayToF32, f16ToF32 } from "../tensor/f16.ts";
import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { legacyQ40ToGgml, Q40_BLOCK_LEN } from "./q40.ts";
import { Q81_BLOCK_BYTES, type TensorFile } from "./tensor_file.ts";

/**
 * Decodes a tensor file to a runtime tensor. `logicalShape` (from the graph's `variable`)
 * gives the shape of block-quant tensors, whose header dims may be flattened; for other
 * tensors it must hold as many items as the header. Legacy Q4_0 is repacked to GGML layout;
 * Q8_1 is dequantized to f32. 64-bit integers beyond 2^53 lose precision.
 *
 * @throws {RangeError} when `logicalShape` does not hold the header's item count
 */
export function decodeTensor(file: TensorFile, logicalShape?: readonly number[]): Tensor {
  const { header, payload } = file;
  const n = volume(header.dims);
  const shape = logicalShape ?? header.dims;
  if (volume(shape) !== n) {
    throw new RangeError(
      `Tensor of dims [${header.dims.join(", ")}] cannot take the shape [${shape.join(", ")}]`,
    );
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  switch (header.layout) {
    case "q40":
      return tensor("q40", shape, payload.subarray(0, header.dataLength));
    case "q40_legacy":
      return tensor("q40", shape, legacyQ40ToGgml(payload.subarray(0, header.dataLength)));
    case "q81":
      return tensor("f32", shape, dequantizeQ81(payload, n));
    case "string":
      return tensor("string", shape, decodeStrings(payload, n));
    case "bits": {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = (payload[i >> 3]! >> (7 - (i & 7))) & 1;
      return tensor("bool", shape, out);
    }
    case "plain":
      return tensor(header.dtype, shape, decodePlain(header.dtype, view, n));
  }
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** A fresh, aligned copy of the first `length` bytes of `view`. */
function copy(view: DataView, length: number): ArrayBuffer {
  return new Uint8Array(view.buffer, view.byteOffset, length).slice().buffer;
}

/**
 * Decodes `n` items of a plain numeric or bool `dtype` from `view` (byte order `little`), as
 * runtime tensor data: f16 widened to f32, integers as f64 (64-bit ones beyond 2^53 rounded).
 * Shared by `.dat` payloads and `.npy` arrays.
 */
export function decodePlain(
  dtype: DType,
  view: DataView,
  n: number,
  little = true,
): Float32Array | Float64Array | Uint8Array {
  const native = little === LITTLE_ENDIAN;
  switch (dtype) {
    case "bool": {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getUint8(i) === 0 ? 0 : 1;
      return out;
    }
    case "f16": {
      if (native) return f16ArrayToF32(new Uint16Array(copy(view, 2 * n)));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(2 * i, little));
      return out;
    }
    case "f32": {
      if (native) return new Float32Array(copy(view, 4 * n));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, little);
      return out;
    }
    default: {
      if (dtype === "f64" && native) return new Float64Array(copy(view, 8 * n));
      const out = new Float64Array(n);
      const read = integerReader(dtype, view, little);
      for (let i = 0; i < n; i++) out[i] = read(i);
      return out;
    }
  }
}

function integerReader(dtype: DType, view: DataView, le: boolean): (i: number) => number {
  // The high and low 32-bit words of item i of a 64-bit type.
  const hi = le ? 4 : 0;
  const lo = le ? 0 : 4;
  switch (dtype) {
    case "f64":
      return (i) => view.getFloat64(8 * i, le);
    case "u8":
      return (i) => view.getUint8(i);
    case "i8":
      return (i) => view.getInt8(i);
    case "u16":
      return (i) => view.getUint16(2 * i, le);
    case "i16":
      return (i) => view.getInt16(2 * i, le);
    case "u32":
      return (i) => view.getUint32(4 * i, le);
    case "i32":
      return (i) => view.getInt32(4 * i, le);
    case "u64":
      return (i) => view.getUint32(8 * i + hi, le) * 2 ** 32 + view.getUint32(8 * i + lo, le);
    case "i64":
      return (i) => view.getInt32(8 * i + hi, le) * 2 ** 32 + view.getUint32(8 * i + lo, le);
  }
  throw new TypeError(`No plain .dat encoding for item type ${dtype}`);
}

function decodeStrings(payload: Uint8Array, n: number): string[] {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const decoder = new TextDecoder();
  const out: string[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const length = view.getUint32(at, true);
    out.push(decoder.decode(payload.subarray(at + 4, at + 4 + length)));
    at += 4 + length;
  }
  return out;
}

function dequantizeQ81(payload: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n); // (n,)
  for (let b = 0; b < n / Q40_BLOCK_LEN; b++) {
    const at = b * Q81_BLOCK_BYTES;
    const d = f16ToF32(payload[at]! | (payload[at + 1]! << 8));
    for (let j = 0; j < Q40_BLOCK_LEN; j++) {
      const q = payload[at + 4 + j]!;
      out[b * Q40_BLOCK_LEN + j] = (q > 127 ? q - 256 : q) * d;
    }
  }
  return out;
}
