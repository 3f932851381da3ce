import type { ByteSource } from "../storage/byte_source.ts";
import { f16ToF32 } from "../tensor/f16.ts";

/** Float item types the converter reads from safetensors files. */
export type SafetensorsDType = "F32" | "F16" | "BF16";

const ITEM_BYTES: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Largest JSON header accepted (safetensors itself caps it at 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** One tensor of a safetensors file: where its bytes are, absolute in the file. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the first item in the file. */
  readonly offset: number;
  readonly length: number;
}

/** The parsed header of one safetensors file. */
export interface SafetensorsFile {
  readonly source: ByteSource;
  readonly tensors: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * Reads and checks the header of a safetensors file: every tensor must be F32, F16 or BF16,
 * its byte range must match its shape, lie inside the file and overlap no other tensor's.
 *
 * @throws {SyntaxError} when the header is not JSON of the expected form
 * @throws {RangeError} when sizes or offsets are inconsistent, or the file is truncated
 * @throws {TypeError} for an item type the converter cannot read
 */
export async function readSafetensors(source: ByteSource): Promise<SafetensorsFile> {
  const file = source.name;
  const size = await source.size();
  if (size < 8) {
    throw new RangeError(`${file}: truncated safetensors file of ${size} bytes, no header`);
  }
  const head = await source.read(0, 8);
  const headerLength = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES) {
    throw new RangeError(`${file}: header length ${headerLength} is not plausible`);
  }
  if (8 + headerLength > size) {
    throw new RangeError(
      `${file}: truncated safetensors file: header of ${headerLength} bytes, file of ${size} bytes`,
    );
  }
  const text = new TextDecoder().decode(await source.read(8, headerLength));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`${file}: safetensors header is not JSON: ${(e as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SyntaxError(`${file}: safetensors header is not a JSON object`);
  }
  const dataStart = 8 + headerLength;
  const dataSize = size - dataStart;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = (value ?? {}) as Record<string, string>;
      continue;
    }
    tensors.set(name, checkEntry(file, name, value, dataStart, dataSize));
  }
  checkDisjoint(file, [...tensors.values()]);
  return { source, tensors, metadata };
}

/**
 * Refuses tensors whose byte ranges overlap: two weights would read the same bytes, and the
 * conversion would succeed with a wrong model.
 */
function checkDisjoint(file: string, entries: readonly SafetensorsEntry[]): void {
  const sorted = entries.filter((e) => e.length > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.offset < prev.offset + prev.length) {
      throw new RangeError(
        `${file}: tensor '${cur.name}' at bytes [${cur.offset}, ${
          cur.offset + cur.length
        }) overlaps tensor '${prev.name}' at [${prev.offset}, ${prev.offset + prev.length})`,
      );
    }
  }
}

function checkEntry(
  file: string,
  name: string,
  value: unknown,
  dataStart: number,
  dataSize: number,
): SafetensorsEntry {
  const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof entry !== "object" || entry === null) {
    throw new SyntaxError(`${file}: tensor '${name}': entry is not an object`);
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== "string") {
    throw new SyntaxError(`${file}: tensor '${name}': missing dtype`);
  }
  if (!(dtype in ITEM_BYTES)) {
    throw new TypeError(
      `${file}: tensor '${name}': unsupported dtype '${dtype}' (supported: F32, F16, BF16)`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SyntaxError(`${file}: tensor '${name}': shape is not a list of dims`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    throw new SyntaxError(`${file}: tensor '${name}': data_offsets is not [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = count * ITEM_BYTES[dtype as SafetensorsDType];
  if (end < begin || end - begin !== expected) {
    throw new RangeError(
      `${file}: tensor '${name}': data_offsets [${begin}, ${end}] hold ${
        end - begin
      } bytes, shape [${(shape as number[]).join(", ")}] of ${dtype} needs ${expected}`,
    );
  }
  if (end > dataSize) {
    throw new RangeError(
      `${file}: truncated: tensor '${name}' ends at data byte ${end}, the file holds ${dataSize}`,
    );
  }
  return {
    name,
    dtype: dtype as SafetensorsDType,
    shape: shape as number[],
    offset: dataStart + begin,
    length: expected,
  };
}

/** Reads one tensor and widens it to f32 values. */
export async function readSafetensorsTensor(
  file: SafetensorsFile,
  entry: SafetensorsEntry,
): Promise<Float32Array> {
  const bytes = await file.source.read(entry.offset, entry.length);
  return floatsFromBytes(bytes, entry.dtype);
}

/** Decodes little-endian F32, F16 or BF16 items to f32 values. */
export function floatsFromBytes(bytes: Uint8Array, dtype: SafetensorsDType): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / ITEM_BYTES[dtype];
  if (dtype === "F32" && bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  }
  const out = new Float32Array(n); // (n,)
  if (dtype === "F32") {
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (dtype === "F16") {
    for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(2 * i, true));
  } else {
    const widened = new Uint32Array(out.buffer); // (n,): bf16 bits are an f32's high half
    for (let i = 0; i < n; i++) widened[i] = view.getUint16(2 * i, true) << 16;
  }
  return out;
}
