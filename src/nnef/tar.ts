import type { ByteSource } from "../storage/byte_source.ts";
import { concatBytes } from "../storage/bytes.ts";

/** Size of a tar block; headers are one block, payloads are padded to whole blocks. */
export const TAR_BLOCK = 512;

/** A regular file found in a tar, its name as written (after PAX and GNU long names). */
export interface TarEntry {
  /** The name as written (after PAX and GNU long names), not normalized. */
  readonly name: string;
  /** Offset of the payload in the tar. */
  readonly offset: number;
  /** Payload bytes. */
  readonly size: number;
}

/** Result of `indexTar`. */
export interface TarIndex {
  /** Regular files in archive order; directories, links and metadata entries are left out. */
  readonly entries: TarEntry[];
  /** Bytes read from the source to build the index (headers, PAX records, read-ahead). */
  readonly bytesRead: number;
}

/** How `indexTar` reads. */
export interface IndexTarOptions {
  /** Read-ahead in bytes after two members of at most one block, to get several headers per read (default 4096). */
  readonly readAhead?: number;
  /** Name of the archive in error messages (default `source.name`). */
  readonly name?: string;
}

const decoder = new TextDecoder();

/** Largest PAX or GNU long-name record read (they hold a name and a few fields). */
export const MAX_META_BYTES = 1 << 20;

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function parseNumber(field: Uint8Array): number | undefined {
  if (field[0]! & 0x80) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = decoder.decode(field).replace(/[\0 ]+$/, "").replace(/^ +/, "");
  if (text === "") return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : undefined;
}

function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < TAR_BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

function checksums(block: Uint8Array): [number, number] {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return [unsigned, signed];
}

/** The fields of one 512-byte tar header that the readers use. */
export interface TarHeader {
  /** The ustar name (prefix joined), before any PAX or GNU long name. */
  readonly name: string;
  readonly size: number;
  /** The type flag as a character, `"0"` for a regular file. */
  readonly type: string;
}

/** True when a 512-byte block is all zeros (the end-of-archive marker). */
export function isTarEndBlock(block: Uint8Array): boolean {
  return isZeroBlock(block);
}

/**
 * Parses one 512-byte tar header found at byte `at` of `archive`.
 *
 * @throws {SyntaxError} a bad checksum or size field
 */
export function parseTarHeader(block: Uint8Array, at: number, archive: string): TarHeader {
  return parseHeader(block, at, archive);
}

function parseHeader(block: Uint8Array, at: number, archive: string): TarHeader {
  const stored = parseNumber(block.subarray(148, 156));
  const [unsigned, signed] = checksums(block);
  if (stored === undefined || (stored !== unsigned && stored !== signed)) {
    if (at === 0) {
      throw new SyntaxError(`${archive}: not a tar archive (no valid tar header at offset 0)`);
    }
    const field = stored === undefined
      ? `a checksum field that is not octal (${JSON.stringify(cString(block.subarray(148, 156)))})`
      : `stored ${stored}`;
    throw new SyntaxError(
      `${archive}: bad tar header checksum at offset ${at}: ${field}, computed ${unsigned}`,
    );
  }
  let name = cString(block.subarray(0, 100));
  const magic = decoder.decode(block.subarray(257, 263));
  if (magic === "ustar\0") {
    const prefix = cString(block.subarray(345, 500));
    if (prefix !== "") name = `${prefix}/${name}`;
  }
  const size = parseNumber(block.subarray(124, 136));
  if (size === undefined) {
    throw new SyntaxError(
      `${archive}: bad size field in the tar header of '${name}' at offset ${at}`,
    );
  }
  const flag = block[156]!;
  return { name, size, type: flag === 0 ? "0" : String.fromCharCode(flag) };
}

/** Parses PAX extended header records (`"<len> <key>=<value>\n"`). */
export function parsePaxRecords(bytes: Uint8Array, where = "PAX header"): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < bytes.length) {
    if (bytes[at] === 0) break;
    const space = bytes.indexOf(0x20, at);
    const length = space < 0 ? NaN : Number(decoder.decode(bytes.subarray(at, space)));
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > bytes.length) {
      throw new SyntaxError(`${where}: bad record at byte ${at}`);
    }
    const record = decoder.decode(bytes.subarray(space + 1, at + length - 1));
    const eq = record.indexOf("=");
    if (eq < 0 || bytes[at + length - 1] !== 0x0a) {
      throw new SyntaxError(`${where}: bad record at byte ${at}`);
    }
    out.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return out;
}

/** `size` rounded up to whole 512-byte blocks. */
export function tarPadded(size: number): number {
  return Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}

/**
 * What a tar header announces, once PAX and GNU long-name records are applied (a PAX `size`
 * may be any number: the reader checks it).
 */
export type TarHeaderStep =
  /** A PAX (`x`) or GNU long-name (`L`) record for the entry that follows: read it whole. */
  | { readonly kind: "record"; readonly type: "x" | "L"; readonly size: number }
  /** A global PAX (`g`) or long link name (`K`) entry: its payload is skipped. */
  | { readonly kind: "skip"; readonly size: number }
  /** A file entry (a regular one when `regular`): its name as written and its payload size. */
  | {
    readonly kind: "entry";
    readonly name: string;
    readonly size: number;
    readonly regular: boolean;
  };

/**
 * The walk over a tar's headers that every tar reader goes through (the header walk of
 * `indexTar` and the one-pass `.tgz` stream): each header is parsed, and the PAX (`path`,
 * `size`) and GNU long-name records before an entry apply to it. The reader brings the bytes
 * and checks sizes against what it has (an archive's end, an inflation budget).
 */
export class TarHeaderWalk {
  readonly #archive: string;
  #pax = new Map<string, string>();
  #longName: string | undefined;

  constructor(archive: string) {
    this.#archive = archive;
  }

  /**
   * Reads the 512-byte header at offset `at`.
   *
   * @throws {SyntaxError} a bad checksum or size field
   */
  header(block: Uint8Array, at: number): TarHeaderStep {
    const header = parseHeader(block, at, this.#archive);
    switch (header.type) {
      case "x":
      case "L":
        return { kind: "record", type: header.type, size: header.size };
      case "g":
      case "K":
        return { kind: "skip", size: header.size };
    }
    const paxSize = this.#pax.get("size");
    const size = paxSize === undefined ? header.size : Number(paxSize);
    const name = this.#pax.get("path") ?? this.#longName ?? header.name;
    this.#pax = new Map();
    this.#longName = undefined;
    return { kind: "entry", name, size, regular: header.type === "0" || header.type === "7" };
  }

  /**
   * Takes the bytes of a record that `header` announced at offset `at`.
   *
   * @throws {RangeError} a record larger than `MAX_META_BYTES`
   * @throws {SyntaxError} a malformed PAX record
   */
  record(type: "x" | "L", bytes: Uint8Array, at: number): void {
    if (type === "L") {
      this.#longName = cString(bytes);
      return;
    }
    this.#pax = new Map([
      ...this.#pax,
      ...parsePaxRecords(bytes, `${this.#archive}: PAX header at offset ${at}`),
    ]);
  }

  /**
   * Checks the size a record's header declares, before its bytes are read.
   *
   * @throws {RangeError} past `MAX_META_BYTES`
   */
  checkRecordSize(type: "x" | "L", size: number, at: number): void {
    if (size <= MAX_META_BYTES) return;
    throw new RangeError(
      `${this.#archive}: the ${type === "x" ? "PAX" : "long name"} entry at offset ${at} ` +
        `declares ${size} bytes, more than the ${MAX_META_BYTES} such a record may hold`,
    );
  }
}

/**
 * Lists the regular files of an uncompressed tar by reading only its headers (and PAX / GNU
 * long-name records), never member payloads: a metadata entry is read with the header that
 * follows it, and only a run of tiny members (one block or less) triggers a read-ahead
 * (or, when members come with PAX records, a read of those records and the header).
 * Handles ustar, GNU `L` long names, PAX `x` headers (`path`, `size`), and a missing end marker.
 *
 * @throws {SyntaxError} a header with a bad checksum or field
 * @throws {RangeError} a truncated tar
 */
export async function indexTar(
  source: ByteSource,
  options: IndexTarOptions = {},
): Promise<TarIndex> {
  const archive = options.name ?? source.name;
  const readAhead = Math.max(TAR_BLOCK, options.readAhead ?? 4096);
  const total = await source.size();
  const entries: TarEntry[] = [];
  let bytesRead = 0;
  let windowStart = 0;
  let window: Uint8Array = new Uint8Array(0);

  async function bytesAt(at: number, length: number, ahead: number): Promise<Uint8Array> {
    if (at >= windowStart && at + length <= windowStart + window.length) {
      return window.subarray(at - windowStart, at - windowStart + length);
    }
    const n = Math.min(total - at, Math.max(length, ahead));
    window = await source.read(at, n);
    windowStart = at;
    bytesRead += n;
    return window.subarray(0, length);
  }

  const walk = new TarHeaderWalk(archive);
  let pos = 0;
  let tinyRun = 0;
  let lastHadMeta = false;
  let meta = false;
  while (pos < total) {
    if (pos + TAR_BLOCK > total) {
      throw new RangeError(
        `${archive}: truncated tar: header at offset ${pos} needs ${TAR_BLOCK} bytes, the archive ends at ${total}`,
      );
    }
    // A run of tiny members, or members each preceded by a PAX/GNU entry, predicts the next reads.
    const ahead = tinyRun >= 2 ? readAhead : lastHadMeta ? 3 * TAR_BLOCK : TAR_BLOCK;
    const block = await bytesAt(pos, TAR_BLOCK, ahead);
    if (isZeroBlock(block)) break;
    const step = walk.header(block, pos);
    const { size } = step;
    const start = pos + TAR_BLOCK;
    if (!Number.isSafeInteger(size) || start + size > total) {
      const name = step.kind === "entry" ? step.name : parseHeader(block, pos, archive).name;
      throw new RangeError(
        `${archive}: truncated tar: member '${name}' needs ${size} bytes at offset ${start}, the archive ends at ${total}`,
      );
    }
    if (step.kind === "record") {
      walk.checkRecordSize(step.type, size, pos);
      meta = true;
      walk.record(step.type, await bytesAt(start, size, tarPadded(size) + TAR_BLOCK), pos);
    } else if (step.kind === "entry") {
      if (step.regular) entries.push({ name: step.name, offset: start, size });
      tinyRun = size <= TAR_BLOCK ? tinyRun + 1 : 0;
      lastHadMeta = meta;
      meta = false;
    }
    pos = start + tarPadded(size);
  }
  return { entries, bytesRead };
}

/** How `tarEntryHeader` and `writeTar` spell what ustar cannot hold. */
export interface TarWriteOptions {
  /** Long or non-ASCII names as a PAX `path` record (default) or a GNU `L` entry. */
  readonly longNames?: "pax" | "gnu";
  /** Modification time in seconds (default 0, for reproducible archives). */
  readonly mtime?: number;
}

/** A file to put in a tar. */
export interface TarWriteEntry {
  /** Path inside the tar. */
  readonly name: string;
  /** The file's bytes. */
  readonly data: Uint8Array;
}

const encoder = new TextEncoder();

function writeString(block: Uint8Array, at: number, length: number, text: string): void {
  block.set(encoder.encode(text).subarray(0, length), at);
}

function writeOctal(block: Uint8Array, at: number, length: number, value: number): void {
  if (value < 8 ** (length - 1)) {
    writeString(block, at, length - 1, value.toString(8).padStart(length - 1, "0"));
    return;
  }
  let n = value;
  for (let i = length - 1; i > 0; i--) {
    block[at + i] = n % 256;
    n = Math.floor(n / 256);
  }
  block[at] = 0x80;
}

function plainHeader(
  name: string,
  size: number,
  type: string,
  gnu: boolean,
  mtime: number,
): Uint8Array {
  const block = new Uint8Array(TAR_BLOCK);
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, mtime);
  block[156] = type.charCodeAt(0);
  writeString(block, 257, 8, gnu ? "ustar  \0" : "ustar\u000000");
  const [sum] = checksums(block);
  writeString(block, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

function withPadding(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(tarPadded(data.length));
  out.set(data);
  return out;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLength = encoder.encode(body).length;
  let length = bodyLength + 1;
  while (bodyLength + String(length).length !== length) length = bodyLength + String(length).length;
  return `${length}${body}`;
}

/**
 * The header block(s) that precede a member's payload: one ustar header, preceded by a PAX
 * or GNU long-name entry when the name does not fit 100 ASCII bytes. Follow it with the
 * payload and `tarPadding(size)`; end the archive with `tarEnd()`.
 */
export function tarEntryHeader(
  name: string,
  size: number,
  options: TarWriteOptions = {},
): Uint8Array {
  const mtime = options.mtime ?? 0;
  const bytes = encoder.encode(name);
  const fits = bytes.length <= 100 && /^[\x20-\x7e]*$/.test(name);
  if (fits) return plainHeader(name, size, "0", false, mtime);
  if (options.longNames === "gnu") {
    const longName = new Uint8Array(bytes.length + 1);
    longName.set(bytes);
    return concatBytes([
      plainHeader("././@LongLink", longName.length, "L", true, 0),
      withPadding(longName),
      plainHeader(asciiPrefix(name), size, "0", true, mtime),
    ]);
  }
  const records = encoder.encode(paxRecord("path", name));
  return concatBytes([
    plainHeader(`PaxHeaders/${asciiPrefix(name).slice(0, 80)}`, records.length, "x", false, mtime),
    withPadding(records),
    plainHeader(asciiPrefix(name), size, "0", false, mtime),
  ]);
}

function asciiPrefix(name: string): string {
  return name.replace(/[^\x20-\x7e]/g, "_").slice(0, 100);
}

/** Zero bytes that pad a payload of `size` bytes to a whole block. */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array(tarPadded(size) - size);
}

/** The end-of-archive marker: two zero blocks. */
export function tarEnd(): Uint8Array {
  return new Uint8Array(2 * TAR_BLOCK);
}

/** Writes files into an uncompressed tar, in the order given. */
export function writeTar(
  entries: Iterable<TarWriteEntry>,
  options: TarWriteOptions = {},
): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const entry of entries) {
    parts.push(
      tarEntryHeader(entry.name, entry.data.length, options),
      entry.data,
      tarPadding(entry.data.length),
    );
  }
  parts.push(tarEnd());
  return concatBytes(parts);
}

/**
 * Applies tract's member-name rules: strips leading `./`, ignores (returns undefined) any
 * path with a component starting with `.`, and rejects absolute paths and `..` components.
 *
 * @throws {RangeError} for a name that would escape the archive
 */
export function normalizeMemberName(raw: string, archive: string): string | undefined {
  let name = raw;
  while (name.startsWith("./")) name = name.slice(2);
  if (name.startsWith("/") || /^[A-Za-z]:[\\/]/.test(name)) {
    throw new RangeError(`${archive}: member '${raw}' has an absolute path`);
  }
  const parts = name.split("/").filter((p) => p !== "");
  if (parts.includes("..")) {
    throw new RangeError(`${archive}: member '${raw}' has a '..' component`);
  }
  if (parts.length === 0 || parts.some((p) => p.startsWith("."))) return undefined;
  return parts.join("/");
}
