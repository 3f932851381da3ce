/** GGUF v2/v3 reader: header, metadata and tensor infos, read through a `ByteSource`. */
import type { ByteSource } from "../storage/byte_source.ts";

/** GGUF metadata value types. */
export const GGUF_VALUE_TYPE = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** GGML tensor types (ggml.h `enum ggml_type`). */
export const GGML_TYPE: {
  readonly [name in GgmlTypeName]: number;
} = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
} as const;

/** Names of the GGML tensor types. */
export type GgmlTypeName =
  | "F32"
  | "F16"
  | "Q4_0"
  | "Q4_1"
  | "Q5_0"
  | "Q5_1"
  | "Q8_0"
  | "Q8_1"
  | "Q2_K"
  | "Q3_K"
  | "Q4_K"
  | "Q5_K"
  | "Q6_K"
  | "Q8_K"
  | "IQ2_XXS"
  | "IQ2_XS"
  | "IQ3_XXS"
  | "IQ1_S"
  | "IQ4_NL"
  | "IQ3_S"
  | "IQ2_S"
  | "IQ4_XS"
  | "I8"
  | "I16"
  | "I32"
  | "I64"
  | "F64"
  | "IQ1_M"
  | "BF16"
  | "TQ1_0"
  | "TQ2_0"
  | "MXFP4";

/** Values per block and bytes per block of each GGML type. */
const GGML_BLOCK: Record<number, readonly [number, number]> = {
  0: [1, 4],
  1: [1, 2],
  2: [32, 18],
  3: [32, 20],
  6: [32, 22],
  7: [32, 24],
  8: [32, 34],
  9: [32, 36],
  10: [256, 84],
  11: [256, 110],
  12: [256, 144],
  13: [256, 176],
  14: [256, 210],
  15: [256, 292],
  16: [256, 66],
  17: [256, 74],
  18: [256, 98],
  19: [256, 50],
  20: [32, 18],
  21: [256, 110],
  22: [256, 82],
  23: [256, 136],
  24: [1, 1],
  25: [1, 2],
  26: [1, 4],
  27: [1, 8],
  28: [1, 8],
  29: [256, 56],
  30: [1, 2],
  34: [256, 54],
  35: [256, 66],
  39: [32, 17],
};

const TYPE_NAMES = new Map<number, GgmlTypeName>(
  Object.entries(GGML_TYPE).map(([name, id]) => [id, name as GgmlTypeName]),
);

/** A metadata value: integers above 2^53 stay `bigint`; arrays are plain arrays. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** One tensor as the GGUF header describes it. */
export interface GgufTensorInfo {
  /** Tensor name, e.g. `blk.0.attn_q.weight`. */
  readonly name: string;
  /** GGML order: `dims[0]` is the fastest-varying (row length). */
  readonly dims: readonly number[];
  /** Row-major shape (`dims` reversed), as NNEF and safetensors write it. */
  readonly shape: readonly number[];
  /** GGML type id (`GGML_TYPE`). */
  readonly type: number;
  /** GGML type name, e.g. `Q4_0`. */
  readonly typeName: GgmlTypeName;
  /** Offset relative to `GgufFile.dataOffset`. */
  readonly offset: number;
  /** Bytes of the tensor's data (whole blocks for quantized types). */
  readonly byteSize: number;
}

/** A parsed GGUF header. Tensor bytes are at `dataOffset + tensor.offset` in the source. */
export interface GgufFile {
  /** Format version: 2 or 3. */
  readonly version: number;
  /** Metadata key-value pairs, in file order. */
  readonly metadata: Map<string, GgufValue>;
  /** Tensor infos, in file order. */
  readonly tensors: GgufTensorInfo[];
  /** `general.alignment`, 32 by default. */
  readonly alignment: number;
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
}

const MAGIC = 0x46554747;
const CHUNK = 1 << 20;
const MAX_ARRAY_DEPTH = 8;

/** Sequential little-endian reads over a ByteSource, fetched in 1 MiB chunks. */
class Cursor {
  #source: ByteSource;
  #size: number;
  #buffer: Uint8Array = new Uint8Array(0);
  #view = new DataView(this.#buffer.buffer);
  #bufferStart = 0;
  #decoder = new TextDecoder();
  pos = 0;

  constructor(source: ByteSource, size: number) {
    this.#source = source;
    this.#size = size;
  }

  async need(n: number, what: string): Promise<number> {
    if (this.pos + n > this.#size) {
      throw new RangeError(
        `Truncated GGUF file ${this.#source.name}: ${what} needs ${n} bytes at offset ${this.pos}, file has ${this.#size}`,
      );
    }
    const at = this.pos - this.#bufferStart;
    if (at < 0 || at + n > this.#buffer.length) {
      const length = Math.min(Math.max(n, CHUNK), this.#size - this.pos);
      this.#buffer = await this.#source.read(this.pos, length);
      this.#view = new DataView(
        this.#buffer.buffer,
        this.#buffer.byteOffset,
        this.#buffer.byteLength,
      );
      this.#bufferStart = this.pos;
    }
    const offset = this.pos - this.#bufferStart;
    this.pos += n;
    return offset;
  }

  get view(): DataView {
    return this.#view;
  }

  async u32(what: string): Promise<number> {
    const at = await this.need(4, what);
    return this.#view.getUint32(at, true);
  }

  async u64(what: string): Promise<number> {
    const at = await this.need(8, what);
    const value = this.#view.getBigUint64(at, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(
        `Bad ${what} ${value} at offset ${this.pos - 8} in GGUF file ${this.#source.name}`,
      );
    }
    return Number(value);
  }

  async string(what: string): Promise<string> {
    const length = await this.u64(`${what} length`);
    const at = await this.need(length, what);
    return this.#decoder.decode(this.#buffer.subarray(at, at + length));
  }

  remaining(): number {
    return this.#size - this.pos;
  }
}

/** Size and reader of each fixed-size GGUF value type, little-endian. */
const FIXED_READERS: Record<number, readonly [number, (view: DataView, at: number) => GgufValue]> =
  {
    [GGUF_VALUE_TYPE.UINT8]: [1, (v, at) => v.getUint8(at)],
    [GGUF_VALUE_TYPE.INT8]: [1, (v, at) => v.getInt8(at)],
    [GGUF_VALUE_TYPE.UINT16]: [2, (v, at) => v.getUint16(at, true)],
    [GGUF_VALUE_TYPE.INT16]: [2, (v, at) => v.getInt16(at, true)],
    [GGUF_VALUE_TYPE.UINT32]: [4, (v, at) => v.getUint32(at, true)],
    [GGUF_VALUE_TYPE.INT32]: [4, (v, at) => v.getInt32(at, true)],
    [GGUF_VALUE_TYPE.FLOAT32]: [4, (v, at) => v.getFloat32(at, true)],
    [GGUF_VALUE_TYPE.BOOL]: [1, (v, at) => v.getUint8(at) !== 0],
    [GGUF_VALUE_TYPE.UINT64]: [8, (v, at) => safeInteger(v.getBigUint64(at, true))],
    [GGUF_VALUE_TYPE.INT64]: [8, (v, at) => safeInteger(v.getBigInt64(at, true))],
    [GGUF_VALUE_TYPE.FLOAT64]: [8, (v, at) => v.getFloat64(at, true)],
  };

async function readScalar(
  cursor: Cursor,
  type: number,
  key: string,
  depth = 0,
): Promise<GgufValue> {
  const fixed = FIXED_READERS[type];
  if (fixed !== undefined) {
    const [size, read] = fixed;
    const at = await cursor.need(size, key); // may replace cursor.view
    return read(cursor.view, at);
  }
  const t = GGUF_VALUE_TYPE;
  switch (type) {
    case t.STRING:
      return await cursor.string(key);
    case t.ARRAY: {
      if (depth >= MAX_ARRAY_DEPTH) {
        throw new RangeError(
          `Array '${key}' at offset ${cursor.pos} nests deeper than ${MAX_ARRAY_DEPTH} levels`,
        );
      }
      const itemType = await cursor.u32(`${key} item type`);
      const count = await cursor.u64(`${key} item count`);
      if (count > cursor.remaining()) {
        throw new RangeError(
          `Bad item count ${count} of array '${key}' at offset ${
            cursor.pos - 8
          }: beyond the end of the file`,
        );
      }
      const items: GgufValue[] = new Array(count);
      for (let i = 0; i < count; i++) items[i] = await readScalar(cursor, itemType, key, depth + 1);
      return items;
    }
    default:
      throw new TypeError(
        `Unknown GGUF value type ${type} of key '${key}' at offset ${cursor.pos}`,
      );
  }
}

function safeInteger(value: bigint): number | bigint {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(value)
    : value;
}

/**
 * Reads the header of a GGUF v2/v3 file (metadata and tensor infos) without reading tensor data.
 *
 * @throws {SyntaxError} when the magic or version is wrong
 * @throws {RangeError} when the file is truncated, or an offset or size is impossible (outside
 * the file, misaligned, or overlapping another tensor's bytes)
 * @throws {TypeError} for an unknown value or tensor type (naming the file and tensor)
 */
export async function readGguf(source: ByteSource): Promise<GgufFile> {
  const size = await source.size();
  const cursor = new Cursor(source, size);
  const magic = await cursor.u32("magic");
  if (magic !== MAGIC) throw new SyntaxError(`Not a GGUF file: ${source.name} (bad magic)`);
  const version = await cursor.u32("version");
  if (version !== 2 && version !== 3) {
    throw new SyntaxError(
      `Unsupported GGUF version ${version} in ${source.name} (expected 2 or 3)`,
    );
  }
  const tensorCount = await cursor.u64("tensor count");
  const kvCount = await cursor.u64("metadata count");
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = await cursor.string(`metadata key ${i}`);
    const type = await cursor.u32(`type of '${key}'`);
    metadata.set(key, await readScalar(cursor, type, key));
  }
  const alignmentValue = metadata.get("general.alignment") ?? 32;
  if (typeof alignmentValue !== "number" || alignmentValue <= 0 || alignmentValue % 8 !== 0) {
    throw new RangeError(`Bad general.alignment ${alignmentValue} in GGUF file ${source.name}`);
  }
  const alignment = alignmentValue;
  const infos: Omit<GgufTensorInfo, "byteSize">[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = await cursor.string(`tensor ${i} name`);
    const nDims = await cursor.u32(`dims count of tensor '${name}'`);
    if (nDims > 8) {
      throw new RangeError(`Tensor '${name}' in GGUF file ${source.name} has ${nDims} dims`);
    }
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(await cursor.u64(`dim ${d} of tensor '${name}'`));
    const type = await cursor.u32(`type of tensor '${name}'`);
    const typeName = TYPE_NAMES.get(type);
    if (typeName === undefined || GGML_BLOCK[type] === undefined) {
      throw new TypeError(`Unknown GGML tensor type ${type} of tensor '${name}' in ${source.name}`);
    }
    const offset = await cursor.u64(`offset of tensor '${name}'`);
    if (infos.some((info) => info.name === name)) {
      throw new RangeError(`Tensor '${name}' appears twice in GGUF file ${source.name}`);
    }
    infos.push({ name, dims, shape: [...dims].reverse(), type, typeName, offset });
  }
  const dataOffset = Math.ceil(cursor.pos / alignment) * alignment;
  const tensors = infos.map((info) => {
    const [blockValues, blockBytes] = GGML_BLOCK[info.type]!;
    const count = info.dims.reduce((a, b) => a * b, 1);
    if (count % blockValues !== 0 || (info.dims[0] ?? 1) % blockValues !== 0) {
      throw new RangeError(
        `Tensor '${info.name}' in ${source.name}: row length ${
          info.dims[0]
        } is not a multiple of the ${info.typeName} block of ${blockValues}`,
      );
    }
    const byteSize = (count / blockValues) * blockBytes;
    if (info.offset % alignment !== 0 || dataOffset + info.offset + byteSize > size) {
      throw new RangeError(
        `Tensor '${info.name}' in ${source.name}: bytes [${dataOffset + info.offset}, ${
          dataOffset + info.offset + byteSize
        }) lie outside the file of ${size} bytes or are misaligned`,
      );
    }
    return { ...info, byteSize };
  });
  const sorted = tensors.filter((t) => t.byteSize > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.offset < prev.offset + prev.byteSize) {
      throw new RangeError(
        `Tensor '${cur.name}' in ${source.name}: bytes [${dataOffset + cur.offset}, ${
          dataOffset + cur.offset + cur.byteSize
        }) overlap tensor '${prev.name}' at [${dataOffset + prev.offset}, ${
          dataOffset + prev.offset + prev.byteSize
        })`,
      );
    }
  }
  return { version, metadata, tensors, alignment, dataOffset };
}
