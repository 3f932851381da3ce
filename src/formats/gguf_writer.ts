/** GGUF v3 writer: metadata, tensor infos and tensor data, in memory or streamed to a file. */
import { concatBytes } from "../storage/bytes.ts";
import { GGUF_VALUE_TYPE } from "./gguf.ts";

/** A GGUF metadata value with its GGUF type. */
export type GgufMetadataValue =
  | { readonly type: "u32"; readonly value: number }
  | { readonly type: "f32"; readonly value: number }
  | { readonly type: "bool"; readonly value: boolean }
  | { readonly type: "string"; readonly value: string }
  | { readonly type: "strings"; readonly value: readonly string[] }
  | { readonly type: "f32s"; readonly value: readonly number[] }
  | { readonly type: "i32s"; readonly value: readonly number[] };

/** A tensor held in memory: `dims` in GGML order, raw bytes of its GGML type. */
export interface GgufTensorData {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: number;
  readonly bytes: Uint8Array;
}

/** A tensor whose bytes are made only when written (see {@link writeGguf}). */
export interface GgufTensorSource {
  readonly name: string;
  /** GGML order: `dims[0]` is the row length. */
  readonly dims: readonly number[];
  /** GGML type id (`GGML_TYPE`). */
  readonly type: number;
  /** Bytes `produce` returns. */
  readonly byteLength: number;
  readonly produce: () => Uint8Array | Promise<Uint8Array>;
}

const ALIGNMENT = 32;

class Bytes {
  readonly parts: Uint8Array[] = [];
  length = 0;
  push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.length += bytes.length;
  }
  #scalar(size: number, set: (view: DataView) => void): void {
    const b = new Uint8Array(size);
    set(new DataView(b.buffer));
    this.push(b);
  }
  u32(v: number): void {
    this.#scalar(4, (view) => view.setUint32(0, v, true));
  }
  i32(v: number): void {
    this.#scalar(4, (view) => view.setInt32(0, v, true));
  }
  u64(v: number): void {
    this.#scalar(8, (view) => view.setBigUint64(0, BigInt(v), true));
  }
  f32(v: number): void {
    this.#scalar(4, (view) => view.setFloat32(0, v, true));
  }
  /** An array value: its item type, count, then each item. */
  array<T>(itemType: number, items: readonly T[], write: (item: T) => void): void {
    this.u32(itemType);
    this.u64(items.length);
    for (const item of items) write(item);
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.push(b);
  }
  concat(): Uint8Array {
    return concatBytes(this.parts, this.length);
  }
}

function padding(length: number): number {
  return Math.ceil(length / ALIGNMENT) * ALIGNMENT - length;
}

function writeValue(b: Bytes, v: GgufMetadataValue): void {
  const t = GGUF_VALUE_TYPE;
  switch (v.type) {
    case "u32":
      b.u32(t.UINT32);
      b.u32(v.value);
      break;
    case "f32":
      b.u32(t.FLOAT32);
      b.f32(v.value);
      break;
    case "bool":
      b.u32(t.BOOL);
      b.push(Uint8Array.of(v.value ? 1 : 0));
      break;
    case "string":
      b.u32(t.STRING);
      b.string(v.value);
      break;
    case "strings":
      b.u32(t.ARRAY);
      b.array(t.STRING, v.value, (s) => b.string(s));
      break;
    case "f32s":
      b.u32(t.ARRAY);
      b.array(t.FLOAT32, v.value, (x) => b.f32(x));
      break;
    case "i32s":
      b.u32(t.ARRAY);
      b.array(t.INT32, v.value, (x) => b.i32(x));
      break;
  }
}

/**
 * Everything before the tensor data: magic, version, counts, metadata, tensor infos (each
 * tensor's data aligned to 32 bytes), padded to the start of the data section.
 */
function ggufHeader(
  metadata: Readonly<Record<string, GgufMetadataValue>>,
  tensors: readonly Pick<GgufTensorSource, "name" | "dims" | "type" | "byteLength">[],
): Uint8Array {
  const b = new Bytes();
  b.push(new TextEncoder().encode("GGUF"));
  b.u32(3);
  b.u64(tensors.length);
  b.u64(Object.keys(metadata).length);
  for (const [key, v] of Object.entries(metadata)) {
    b.string(key);
    writeValue(b, v);
  }
  let offset = 0;
  for (const t of tensors) {
    b.string(t.name);
    b.u32(t.dims.length);
    for (const d of t.dims) b.u64(d);
    b.u32(t.type);
    b.u64(offset);
    offset += t.byteLength + padding(t.byteLength);
  }
  b.push(new Uint8Array(padding(b.length)));
  return b.concat();
}

/** The bytes of a GGUF v3 file holding `tensors`, in that order. */
export function ggufBytes(
  metadata: Readonly<Record<string, GgufMetadataValue>>,
  tensors: readonly GgufTensorData[],
): Uint8Array {
  const parts = [
    ggufHeader(metadata, tensors.map((t) => ({ ...t, byteLength: t.bytes.length }))),
  ];
  for (const t of tensors) parts.push(t.bytes, new Uint8Array(padding(t.bytes.length)));
  return concatBytes(parts);
}

/**
 * Writes a GGUF v3 file at `path`, asking each tensor for its bytes only when its turn comes,
 * so that no more than one tensor is in memory at a time.
 *
 * @throws {RangeError} when a tensor produces another number of bytes than it announced
 */
export async function writeGguf(
  path: string,
  metadata: Readonly<Record<string, GgufMetadataValue>>,
  tensors: readonly GgufTensorSource[],
): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  await writeAll(file, ggufHeader(metadata, tensors));
  for (const t of tensors) {
    const bytes = await t.produce();
    if (bytes.length !== t.byteLength) {
      throw new RangeError(
        `GGUF tensor '${t.name}' produced ${bytes.length} bytes, announced ${t.byteLength}`,
      );
    }
    await writeAll(file, bytes);
    await writeAll(file, new Uint8Array(padding(bytes.length)));
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}
