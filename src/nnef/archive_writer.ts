import { dirname } from "node:path";
import { ARCHIVE_INDEX_MEMBER, type ArchiveIndexEntry } from "./archive_index.ts";
import { tarEnd, tarEntryHeader, tarPadded, tarPadding } from "./tar.ts";
import { createSha256 } from "../storage/sha256.ts";

/** Bytes hashed and written at a time, so that no whole-tensor copy is made on the way out. */
const SLICE = 1 << 22;

/** A member to write: its exact size is known before its bytes are produced. */
export interface ArchiveMember {
  readonly name: string;
  readonly size: number;
  /** Produces the member's bytes, whole or in chunks; called once, in archive order. */
  produce(): Promise<Uint8Array | Uint8Array[]> | Uint8Array | Uint8Array[];
}

/** Content of `rill-index.json` (`ARCHIVE_INDEX_MEMBER`), which the converter writes first. */
export interface ArchiveIndex {
  /** Always `rill-archive-index`. */
  readonly format: "rill-archive-index";
  /** Layout version of this index. */
  readonly version: 1;
  /** Every member after the index, in archive order. */
  readonly members: readonly ArchiveIndexEntry[];
}

/** Progress of `writeArchive`, after each member. */
export interface WriteProgress {
  readonly membersDone: number;
  readonly membersTotal: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly member: string;
}

interface Placed {
  readonly member: ArchiveMember;
  readonly headerOffset: number;
  readonly dataOffset: number;
}

function place(members: readonly ArchiveMember[], start: number): Placed[] {
  let at = start;
  return members.map((member) => {
    const headerOffset = at;
    const dataOffset = at + tarEntryHeader(member.name, member.size).length;
    at = dataOffset + tarPadded(member.size);
    return { member, headerOffset, dataOffset };
  });
}

function renderIndex(
  placed: readonly Placed[],
  hashes: readonly string[],
): { index: ArchiveIndex; bytes: Uint8Array } {
  const index: ArchiveIndex = {
    format: "rill-archive-index",
    version: 1,
    members: placed.map((p, i) => ({
      name: p.member.name,
      offset: p.dataOffset,
      size: p.member.size,
      sha256: hashes[i]!,
    })),
  };
  return { index, bytes: new TextEncoder().encode(JSON.stringify(index) + "\n") };
}

/**
 * Writes an uncompressed tar whose first member is `rill-index.json` (name, data offset,
 * size and sha256 of every other member), then `members` in order. The archive is written
 * to a temporary file beside `path` and renamed at the end, so a failure leaves nothing.
 * One member's bytes are held at a time.
 *
 * @throws {RangeError} when a member produces another size than announced
 */
export async function writeArchive(
  path: string,
  members: readonly ArchiveMember[],
  onProgress?: (p: WriteProgress) => void,
): Promise<ArchiveIndex> {
  const zeros = members.map(() => "0".repeat(64));
  let indexSize = 0;
  let placed: Placed[] = [];
  for (let round = 0; round < 8; round++) {
    const indexHeaderSize = tarEntryHeader(ARCHIVE_INDEX_MEMBER, indexSize).length;
    placed = place(members, indexHeaderSize + tarPadded(indexSize));
    const size = renderIndex(placed, zeros).bytes.length;
    if (size === indexSize) break;
    indexSize = size;
  }
  const indexDataOffset = tarEntryHeader(ARCHIVE_INDEX_MEMBER, indexSize).length;
  const last = placed.at(-1);
  const end = last === undefined
    ? indexDataOffset + tarPadded(indexSize)
    : last.dataOffset + tarPadded(last.member.size);
  const total = end + tarEnd().length;

  const temp = `${path}.partial-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(dirname(path), { recursive: true });
  const file = await Deno.open(temp, { write: true, createNew: true });
  let closed = false;
  try {
    let at = 0;
    const write = async (bytes: Uint8Array) => {
      let done = 0;
      while (done < bytes.length) done += await file.write(bytes.subarray(done));
      at += bytes.length;
    };
    await write(tarEntryHeader(ARCHIVE_INDEX_MEMBER, indexSize));
    await write(new Uint8Array(tarPadded(indexSize)));
    const hashes: string[] = [];
    for (const [i, p] of placed.entries()) {
      if (at !== p.headerOffset) throw new RangeError(`Archive offset drift at '${p.member.name}'`);
      await write(tarEntryHeader(p.member.name, p.member.size));
      const produced = await p.member.produce();
      const chunks = Array.isArray(produced) ? produced : [produced];
      const length = chunks.reduce((n, c) => n + c.length, 0);
      if (length !== p.member.size) {
        throw new RangeError(
          `Member '${p.member.name}' holds ${length} bytes, ${p.member.size} were announced`,
        );
      }
      const hash = createSha256();
      for (const chunk of chunks) {
        for (let at = 0; at < chunk.length; at += SLICE) {
          const slice = chunk.subarray(at, at + SLICE);
          hash.update(slice);
          await write(slice);
        }
      }
      hashes.push(hash.hex());
      await write(tarPadding(length));
      onProgress?.({
        membersDone: i + 1,
        membersTotal: placed.length,
        bytesDone: at,
        bytesTotal: total,
        member: p.member.name,
      });
    }
    await write(tarEnd());
    const { index, bytes } = renderIndex(placed, hashes);
    if (bytes.length !== indexSize) throw new RangeError("Archive index changed size");
    await file.seek(indexDataOffset, Deno.SeekMode.Start);
    let done = 0;
    while (done < bytes.length) done += await file.write(bytes.subarray(done));
    file.close();
    closed = true;
    await Deno.rename(temp, path);
    return index;
  } catch (e) {
    if (!closed) file.close();
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
}
