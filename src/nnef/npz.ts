/** NumPy `.npy` arrays and `.npz` bundles (zip, stored or deflated), as tract's test cases use. */
import type { DType } from "../tensor/dtype.ts";
import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { decodePlain } from "./tensor_decode.ts";

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

interface NpyHeader {
  readonly descr: string;
  readonly fortranOrder: boolean;
  readonly shape: number[];
}

/** Parses the Python dict literal of an npy header: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`. */
function parseHeader(text: string, name: string): NpyHeader {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (descr === null || fortran === null || shape === null) {
    throw new SyntaxError(`Bad npy header in ${name}: ${JSON.stringify(text.trim())}`);
  }
  const dims = shape[1]!.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    const d = Number(s.replace(/L$/, ""));
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new SyntaxError(`Bad dimension '${s}' in npy header of ${name}`);
    }
    return d;
  });
  return { descr: descr[1]!, fortranOrder: fortran[1] === "True", shape: dims };
}

/** The runtime item type of a numpy kind and item size (`f4` for `<f4`). */
const NPY_TYPES: Readonly<Record<string, DType>> = {
  f2: "f16",
  f4: "f32",
  f8: "f64",
  i1: "i8",
  i2: "i16",
  i4: "i32",
  i8: "i64",
  u1: "u8",
  u2: "u16",
  u4: "u32",
  u8: "u64",
  b1: "bool",
};

/**
 * Reads one `.npy` array (format v1, v2 or v3, C order) into a runtime tensor. Integers are kept
 * as exact f64 values, f16 is widened to f32 storage, `b1` becomes bool.
 *
 * @param bytes the whole `.npy` file
 * @param name where it came from, for error messages
 * @throws {SyntaxError} for a bad magic or header
 * @throws {TypeError} for an unsupported dtype or Fortran order
 * @throws {RangeError} when the data is shorter than the shape says
 */
export function readNpy(bytes: Uint8Array, name = "array.npy"): Tensor {
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new SyntaxError(`Not an npy file: ${name} (bad magic)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new RangeError(`Truncated npy header in ${name}`);
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new SyntaxError(`Unsupported npy format version ${major}.${bytes[7]} in ${name}`);
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) throw new RangeError(`Truncated npy header in ${name}`);
  const decoder = new TextDecoder(major === 3 ? "utf-8" : "latin1");
  const header = parseHeader(decoder.decode(bytes.subarray(headerStart, dataStart)), name);
  if (header.fortranOrder) throw new TypeError(`Fortran-ordered array in ${name} is not supported`);
  const descr = /^([<>=|])([a-zA-Z])(\d+)$/.exec(header.descr);
  const dtype = descr === null ? undefined : NPY_TYPES[`${descr[2]}${descr[3]}`];
  if (descr === null || dtype === undefined) {
    throw new TypeError(`Unsupported npy dtype '${header.descr}' in ${name}`);
  }
  const itemSize = Number(descr[3]);
  const count = volume(header.shape);
  if (dataStart + count * itemSize > bytes.length) {
    throw new RangeError(
      `Truncated npy data in ${name}: shape (${
        header.shape.join(", ")
      }) needs ${count} items of ${itemSize} bytes after offset ${dataStart}, file has ${bytes.length} bytes`,
    );
  }
  const data = decodePlain(
    dtype,
    new DataView(bytes.buffer, bytes.byteOffset + dataStart, count * itemSize),
    count,
    descr[1] !== ">",
  );
  if (dtype === "i64" || dtype === "u64") {
    const bad = (data as Float64Array).find((v) => !Number.isSafeInteger(v));
    if (bad !== undefined) throw new RangeError(`Integer ${bad} in ${name} is beyond 2^53`);
  }
  return tensor(dtype, header.shape, data);
}

interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
}

function zipEntries(bytes: Uint8Array, name: string): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new SyntaxError(`Not a zip file: ${name} (no end of central directory)`);
  let count = view.getUint16(eocd + 10, true);
  let offset = view.getUint32(eocd + 16, true);
  if ((count === 0xffff || offset === 0xffffffff) && eocd >= 20) {
    const locator = eocd - 20;
    if (view.getUint32(locator, true) === 0x07064b50) {
      const record = Number(view.getBigUint64(locator + 8, true));
      if (record + 56 <= bytes.length && view.getUint32(record, true) === 0x06064b50) {
        count = Number(view.getBigUint64(record + 32, true));
        offset = Number(view.getBigUint64(record + 48, true));
      }
    }
  }
  const entries: ZipEntry[] = [];
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    if (offset + 46 > bytes.length || view.getUint32(offset, true) !== 0x02014b50) {
      throw new SyntaxError(`Bad zip central directory entry ${i} at offset ${offset} in ${name}`);
    }
    const method = view.getUint16(offset + 10, true);
    let compressedSize = view.getUint32(offset + 20, true);
    let size = view.getUint32(offset + 24, true);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    let localOffset = view.getUint32(offset + 42, true);
    const entryName = decoder.decode(bytes.subarray(offset + 46, offset + 46 + nameLength));
    let extra = offset + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = view.getUint16(extra, true);
      const length = view.getUint16(extra + 2, true);
      if (id === 0x0001) {
        let at = extra + 4;
        const next = () => {
          const v = Number(view.getBigUint64(at, true));
          at += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      extra += 4 + length;
    }
    entries.push({ name: entryName, method, compressedSize, size, localOffset });
    offset = extraEnd + commentLength;
  }
  return entries;
}

async function entryBytes(bytes: Uint8Array, entry: ZipEntry, name: string): Promise<Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = entry.localOffset;
  if (at + 30 > bytes.length || view.getUint32(at, true) !== 0x04034b50) {
    throw new SyntaxError(`Bad zip local header of '${entry.name}' at offset ${at} in ${name}`);
  }
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  if (start + entry.compressedSize > bytes.length) {
    throw new RangeError(`Truncated zip member '${entry.name}' in ${name}`);
  }
  const raw = bytes.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return raw;
  if (entry.method !== 8) {
    throw new TypeError(
      `Unsupported zip compression method ${entry.method} of '${entry.name}' in ${name}`,
    );
  }
  const stream = new Blob([raw.slice()]).stream().pipeThrough(
    new DecompressionStream("deflate-raw"),
  );
  const inflated = new Uint8Array(await new Response(stream).arrayBuffer());
  if (inflated.length !== entry.size) {
    throw new RangeError(
      `Zip member '${entry.name}' in ${name} inflates to ${inflated.length} bytes, expected ${entry.size}`,
    );
  }
  return inflated;
}

/**
 * Reads every array of an `.npz` bundle, keyed by member name without `.npy`.
 *
 * @param bytes the whole `.npz` file
 * @param name where it came from, for error messages
 * @returns the arrays, in the order of the zip's central directory
 * @throws {SyntaxError} when the zip or an npy header is malformed
 * @throws {TypeError} for an unsupported compression method or dtype
 * @throws {RangeError} when a member is truncated
 */
export async function readNpz(
  bytes: Uint8Array,
  name = "bundle.npz",
): Promise<Map<string, Tensor>> {
  const arrays = new Map<string, Tensor>();
  for (const entry of zipEntries(bytes, name)) {
    if (entry.name.endsWith("/")) continue;
    const data = await entryBytes(bytes, entry, name);
    arrays.set(entry.name.replace(/\.npy$/, ""), readNpy(data, `${name}:${entry.name}`));
  }
  return arrays;
}
