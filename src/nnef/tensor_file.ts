import type { DType } from "../tensor/dtype.ts";
import { volume } from "../tensor/tensor.ts";
import { Q40_BLOCK_BYTES, Q40_BLOCK_LEN } from "./q40.ts";

/** Size of the `.dat` header that precedes the payload. */
export const TENSOR_HEADER_BYTES = 128;
/** Item-type vendor of tract's own codes ("RT" on disk). */
export const TRACT_VENDOR = 0x5452;
/** `bits_per_item` of tract's variable-size and block-quant item types. */
export const VARIABLE_BITS = 0xffffffff;

/** tract vendor item-type codes. */
export const TRACT_CODES = {
  string: 0x1000,
  q40: 0x3040,
  q40Legacy: 0x2040,
  q81Read: 0x3080,
  q81Write: 0x3081,
} as const;

/** Most dims a `.dat` header holds. */
export const MAX_RANK = 8;
/** Offset of the header's reserved bytes (legacy quantization parameters and padding). */
export const RESERVED_OFFSET = 52;
/** Bytes of one Q8_1 block: two f16 (scale and sum) and 32 i8. */
export const Q81_BLOCK_BYTES = 36;

/**
 * How the payload is laid out: `plain` (row-major items of `bitsPerItem` bits), `bits` (bool
 * packed MSB-first), `string` (u32 length + UTF-8 per item), `q40` (GGML Q4_0 blocks),
 * `q40_legacy` (tract's older Q4_0 nibble order), `q81` (Q8_1 blocks).
 */
export type TensorLayout = "plain" | "bits" | "string" | "q40" | "q40_legacy" | "q81";

/** The 128-byte header of a `.dat` tensor file, decoded. */
export interface TensorHeader {
  /** The format version, major and minor. */
  readonly version: [number, number];
  /** Payload byte count as written; not trustworthy for strings. */
  readonly dataLength: number;
  /** The number of dims. */
  readonly rank: number;
  /** The `rank` dims of the header: for block-quant tensors possibly flattened to 2-D. */
  readonly dims: number[];
  /** Bits per item, as written. */
  readonly bitsPerItem: number;
  /** Item-type code, as written (1 and 2 both mean unsigned, 3 and 4 signed). */
  readonly itemType: number;
  /** The vendor code of the item type (0 for the standard types). */
  readonly vendor: number;
  /** Item type `decodeTensor` produces (`f32` for Q8_1, which Rill dequantizes). */
  readonly dtype: DType;
  /** How the payload is laid out. */
  readonly layout: TensorLayout;
  /** Bytes 52..128 as written (legacy quantization parameters and padding). */
  readonly reserved: Uint8Array;
}

/** A `.dat` file: its header and its raw payload. */
export interface TensorFile {
  /** The decoded header. */
  readonly header: TensorHeader;
  /** Exactly the bytes after the header (`readTensorFile` returns a view of its input). */
  readonly payload: Uint8Array;
}

interface ItemKind {
  readonly dtype: DType;
  readonly layout: TensorLayout;
}

const FLOAT_BITS: Record<number, DType> = { 16: "f16", 32: "f32", 64: "f64" };
const UINT_BITS: Record<number, DType> = { 8: "u8", 16: "u16", 32: "u32", 64: "u64" };
const INT_BITS: Record<number, DType> = { 8: "i8", 16: "i16", 32: "i32", 64: "i64" };

function itemKind(file: string, vendor: number, code: number, bits: number): ItemKind {
  const where = `${file}: item type ${hex(code)} (vendor ${hex(vendor)})`;
  if (vendor === 0) {
    let table: Record<number, DType> | undefined;
    if (code === 0) table = FLOAT_BITS;
    else if (code === 1 || code === 2) table = UINT_BITS;
    else if (code === 3 || code === 4) table = INT_BITS;
    else if (code === 5) {
      if (bits === 1) return { dtype: "bool", layout: "bits" };
      if (bits === 8) return { dtype: "bool", layout: "plain" };
      throw new RangeError(`${where}: bits_per_item ${bits} is not 1 or 8`);
    } else {
      throw new TypeError(`${file}: unknown item type code ${code} (vendor 0)`);
    }
    const dtype = table[bits];
    if (dtype === undefined) {
      throw new RangeError(`${where}: unsupported bits_per_item ${bits}`);
    }
    return { dtype, layout: "plain" };
  }
  if (vendor !== TRACT_VENDOR) {
    throw new TypeError(`${file}: unknown item type vendor ${hex(vendor)}`);
  }
  switch (code) {
    case TRACT_CODES.string:
      return { dtype: "string", layout: "string" };
    case TRACT_CODES.q40:
      return { dtype: "q40", layout: "q40" };
    case TRACT_CODES.q40Legacy:
      return { dtype: "q40", layout: "q40_legacy" };
    case TRACT_CODES.q81Read:
    case TRACT_CODES.q81Write:
      return { dtype: "f32", layout: "q81" };
  }
  throw new TypeError(`${file}: unknown tract item type code ${hex(code)}`);
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(4, "0")}`;
}

/**
 * Decodes and validates the 128-byte header at the start of `bytes` (the payload need not
 * follow). `file` names the file in error messages.
 *
 * @throws {RangeError} truncated header, version, rank, dims or data length out of range
 * @throws {TypeError} bad magic, unknown item type or vendor
 */
export function readTensorHeader(bytes: Uint8Array, file: string): TensorHeader {
  if (bytes.length < TENSOR_HEADER_BYTES) {
    throw new RangeError(
      `${file}: truncated header: ${bytes.length} bytes, expected ${TENSOR_HEADER_BYTES}`,
    );
  }
  if (bytes[0] !== 0x4e || bytes[1] !== 0xef) {
    throw new TypeError(
      `${file}: bad magic ${hexBytes(bytes.subarray(0, 2))}, expected 4e ef (not an NNEF tensor)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, TENSOR_HEADER_BYTES);
  const version: [number, number] = [bytes[2]!, bytes[3]!];
  if (version[0] !== 1) {
    throw new RangeError(`${file}: unsupported version ${version[0]}.${version[1]}, expected 1.x`);
  }
  const dataLength = view.getUint32(4, true);
  const rank = view.getUint32(8, true);
  if (rank > MAX_RANK) throw new RangeError(`${file}: rank ${rank} exceeds ${MAX_RANK}`);
  const dims: number[] = [];
  for (let i = 0; i < MAX_RANK; i++) {
    const d = view.getUint32(12 + 4 * i, true);
    if (i < rank) dims.push(d);
    else if (d !== 0) {
      throw new RangeError(`${file}: dims[${i}] is ${d} but rank is ${rank}`);
    }
  }
  const bitsPerItem = view.getUint32(44, true);
  const itemType = view.getUint16(48, true);
  const vendor = view.getUint16(50, true);
  const { dtype, layout } = itemKind(file, vendor, itemType, bitsPerItem);
  const header: TensorHeader = {
    version,
    dataLength,
    rank,
    dims,
    bitsPerItem,
    itemType,
    vendor,
    dtype,
    layout,
    reserved: bytes.slice(RESERVED_OFFSET, TENSOR_HEADER_BYTES),
  };
  checkDataLength(header, file);
  return header;
}

function hexBytes(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

function itemCount(header: TensorHeader, file: string): number {
  const n = volume(header.dims);
  if (!Number.isSafeInteger(n)) {
    throw new RangeError(`${file}: dims [${header.dims.join(", ")}] overflow`);
  }
  return n;
}

function blockBytes(layout: TensorLayout): number {
  return layout === "q81" ? Q81_BLOCK_BYTES : Q40_BLOCK_BYTES;
}

function checkDataLength(header: TensorHeader, file: string): void {
  const n = itemCount(header, file);
  const dims = `[${header.dims.join(", ")}]`;
  switch (header.layout) {
    case "string":
      return;
    case "q40":
    case "q40_legacy":
    case "q81": {
      if (header.rank < 2) {
        throw new RangeError(`${file}: block-quant tensor has rank ${header.rank}, expected >= 2`);
      }
      const k = n / header.dims[0]!;
      if (n !== 0 && k % Q40_BLOCK_LEN !== 0) {
        throw new RangeError(
          `${file}: block-quant dims ${dims}: inner size ${k} is not a multiple of ${Q40_BLOCK_LEN}`,
        );
      }
      const expected = (n / Q40_BLOCK_LEN) * blockBytes(header.layout);
      if (header.dataLength !== expected) {
        throw new RangeError(
          `${file}: data_length ${header.dataLength} does not match dims ${dims} (${expected} bytes of ${header.layout} blocks)`,
        );
      }
      return;
    }
    case "bits": {
      const expected = Math.ceil(n / 8);
      if (header.dataLength !== expected) {
        throw new RangeError(
          `${file}: data_length ${header.dataLength} does not match dims ${dims} at 1 bit per item (${expected} bytes)`,
        );
      }
      return;
    }
    case "plain": {
      const expected = (n * header.bitsPerItem) / 8;
      if (header.dataLength !== expected) {
        throw new RangeError(
          `${file}: data_length ${header.dataLength} does not match dims ${dims} at ${header.bitsPerItem} bits per item (${expected} bytes)`,
        );
      }
    }
  }
}

/**
 * Reads a whole `.dat` file: header, then exactly `dataLength` payload bytes (for strings,
 * the length-prefixed items, whatever `dataLength` says).
 *
 * @throws {RangeError} as `readTensorHeader`, and when the payload is shorter or longer than
 *   the header says
 */
export function readTensorFile(bytes: Uint8Array, file: string): TensorFile {
  const header = readTensorHeader(bytes, file);
  const available = bytes.length - TENSOR_HEADER_BYTES;
  if (header.layout === "string") {
    const end = stringPayloadEnd(bytes, itemCount(header, file), file);
    if (end !== bytes.length) {
      throw new RangeError(
        `${file}: ${bytes.length - end} unexpected bytes after the last string item`,
      );
    }
  } else if (available < header.dataLength) {
    throw new RangeError(
      `${file}: payload is ${available} bytes, shorter than data_length ${header.dataLength}`,
    );
  } else if (available > header.dataLength) {
    throw new RangeError(
      `${file}: payload is ${available} bytes, longer than data_length ${header.dataLength}`,
    );
  }
  return { header, payload: bytes.subarray(TENSOR_HEADER_BYTES) };
}

function stringPayloadEnd(bytes: Uint8Array, count: number, file: string): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = TENSOR_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.length) {
      throw new RangeError(`${file}: string item ${i} of ${count}: length prefix past the end`);
    }
    const length = view.getUint32(at, true);
    at += 4 + length;
    if (at > bytes.length) {
      throw new RangeError(`${file}: string item ${i} of ${count}: ${length} bytes past the end`);
    }
  }
  return at;
}

/** Serializes a tensor file; the inverse of `readTensorFile`, byte for byte. */
export function writeTensorFile(file: TensorFile): Uint8Array {
  const { header, payload } = file;
  const out = new Uint8Array(TENSOR_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  out[0] = 0x4e;
  out[1] = 0xef;
  out[2] = header.version[0];
  out[3] = header.version[1];
  view.setUint32(4, header.dataLength, true);
  view.setUint32(8, header.rank, true);
  header.dims.forEach((d, i) => view.setUint32(12 + 4 * i, d, true));
  view.setUint32(44, header.bitsPerItem, true);
  view.setUint16(48, header.itemType, true);
  view.setUint16(50, header.vendor, true);
  out.set(header.reserved.subarray(0, TENSOR_HEADER_BYTES - RESERVED_OFFSET), RESERVED_OFFSET);
  out.set(payload, TENSOR_HEADER_BYTES);
  return out;
}
