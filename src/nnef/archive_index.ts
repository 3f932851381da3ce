import { normalizeMemberName, TAR_BLOCK, tarPadded } from "./tar.ts";

/** Name of the index member that Rill's converter writes first in every tar it makes. */
export const ARCHIVE_INDEX_MEMBER = "rill-index.json";

/** One member as the index lists it: where its bytes lie and their sha256. */
export interface ArchiveIndexEntry {
  /** Path inside the archive, as `normalizeMemberName` leaves it. */
  readonly name: string;
  /** Offset of the member's payload in the tar (after its header blocks). */
  readonly offset: number;
  /** Payload bytes. */
  readonly size: number;
  /** Lower-case hex sha256 of the payload. */
  readonly sha256: string;
}

/**
 * Parses and checks the `rill-index.json` member (`{"format":"rill-archive-index","version":1,
 * "members":[{name, offset, size, sha256}]}`) of a tar of `objectSize` bytes whose index payload
 * ends at `indexEnd`: every member lies after the index, inside the object, block-aligned, with
 * room for its header before it, without overlapping another; names are legal and unique.
 *
 * @throws {SyntaxError} text that is not JSON or not this format
 * @throws {TypeError} a field of the wrong kind
 * @throws {RangeError} an offset or size outside the object, an overlap, a bad or repeated name
 */
export function parseArchiveIndex(
  bytes: Uint8Array,
  archive: string,
  objectSize: number,
  indexEnd: number,
): ArchiveIndexEntry[] {
  const where = `${archive}: ${ARCHIVE_INDEX_MEMBER}`;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new SyntaxError(`${where} is not JSON: ${e instanceof Error ? e.message : e}`);
  }
  const root = json as { format?: unknown; version?: unknown; members?: unknown };
  if (typeof json !== "object" || json === null || root.format !== "rill-archive-index") {
    throw new SyntaxError(`${where}: field 'format' is not "rill-archive-index"`);
  }
  if (root.version !== 1) {
    throw new SyntaxError(`${where}: unsupported version ${JSON.stringify(root.version)}`);
  }
  if (!Array.isArray(root.members)) {
    throw new TypeError(`${where}: field 'members' is not an array`);
  }
  const entries: ArchiveIndexEntry[] = [];
  const names = new Set<string>();
  for (const [i, raw] of (root.members as unknown[]).entries()) {
    const at = `${where}: members[${i}]`;
    const m = raw as { name?: unknown; offset?: unknown; size?: unknown; sha256?: unknown };
    if (typeof raw !== "object" || raw === null) throw new TypeError(`${at} is not an object`);
    if (typeof m.name !== "string") throw new TypeError(`${at}.name is not a string`);
    for (const field of ["offset", "size"] as const) {
      const v = m[field];
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
        throw new TypeError(`${at}.${field} is not a non-negative integer`);
      }
    }
    if (typeof m.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(m.sha256)) {
      throw new TypeError(`${at}.sha256 is not 64 lower-case hex digits`);
    }
    const offset = m.offset as number;
    const size = m.size as number;
    if (offset % TAR_BLOCK !== 0 || offset < indexEnd + TAR_BLOCK) {
      throw new RangeError(
        `${at} ('${m.name}'): offset ${offset} is not a block boundary after the index (which ends at ${indexEnd})`,
      );
    }
    if (offset + size > objectSize) {
      throw new RangeError(
        `${at} ('${m.name}'): [${offset}, ${
          offset + size
        }) is past the end of the ${objectSize}-byte archive`,
      );
    }
    const name = normalizeMemberName(m.name, archive);
    if (name === undefined) continue;
    if (names.has(name)) throw new RangeError(`${at}: member '${name}' is listed twice`);
    names.add(name);
    entries.push({ name, offset, size, sha256: m.sha256 });
  }
  const byOffset = [...entries].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    const cur = byOffset[i]!;
    if (cur.offset < prev.offset + tarPadded(prev.size) + TAR_BLOCK) {
      throw new RangeError(
        `${where}: member '${cur.name}' at ${cur.offset} overlaps '${prev.name}' at ${prev.offset} (${prev.size} bytes)`,
      );
    }
  }
  return entries;
}
