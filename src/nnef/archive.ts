import type { ByteSource } from "../storage/byte_source.ts";
import type { DiskCache, MemberCacheKey } from "../storage/disk_cache.ts";
import { openFileSource } from "../storage/file_source.ts";
import { redactLocation } from "../storage/redact.ts";
import { type LocationOptions, openLocation } from "../storage/location.ts";
import { loadTimeoutMs, secondsText, startDeadline } from "./deadline.ts";
import { memorySource } from "../storage/memory_source.ts";
import { createSha256 } from "../storage/sha256.ts";
import { ARCHIVE_INDEX_MEMBER, parseArchiveIndex } from "./archive_index.ts";
import { GZIP_MAGIC_BYTES, inflateBudget, isGzip } from "./gzip.ts";
import { inflateTar } from "./tar_stream.ts";
import {
  createRangeLoader,
  hashMismatch,
  type LoaderOptions,
  type MemberLoader,
} from "./loader.ts";
import { indexTar, normalizeMemberName, parseTarHeader, TAR_BLOCK, type TarEntry } from "./tar.ts";

export { normalizeMemberName };

/** A file of an archive. */
export interface ArchiveMember {
  /** Path inside the archive, `/`-separated, without a leading `./`. */
  readonly name: string;
  /** Payload offset in the tar (the decompressed tar for a `.tgz`); 0 in a folder. */
  readonly offset: number;
  /** Payload bytes. */
  readonly size: number;
  /** The payload's sha256 (hex) when the archive's `rill-index.json` lists it. */
  readonly sha256?: string;
}

/** An NNEF model container: a folder, a tar or a gzip'd tar. */
export interface Archive {
  /** The path, the URL (redacted) or the source name. */
  readonly name: string;
  /** What holds the members: a folder, a tar, or a gzip'd tar (inflated into memory). */
  readonly kind: "folder" | "tar" | "tgz";
  /** Bytes read from the source to list the members (for a `.tgz`, the whole compressed file). */
  readonly indexBytesRead: number;
  /** True when the members came from the converter's `rill-index.json`, not a header walk. */
  readonly indexed: boolean;
  /** The object's strong ETag, pinned at open (remote archives whose server sends one). */
  readonly etag: string | undefined;
  /** Members sorted by name. */
  members(): ArchiveMember[];
  /** The member of that name, or undefined. */
  member(name: string): ArchiveMember | undefined;
  /** True when the archive has a member of that name. */
  has(name: string): boolean;
  /** Reads a whole member; checked against its sha256 when the index gives one. */
  read(name: string): Promise<Uint8Array>;
  /** Reads `[offset, offset + length)` of a member, e.g. the 128-byte header of a `.dat` (not hash-checked). */
  readRange(name: string, offset: number, length: number): Promise<Uint8Array>;
  /**
   * Streams a whole member. With a sha256 in the index the bytes are hashed as they pass and
   * the stream errors instead of closing when they do not match: trust it only once closed.
   */
  stream(name: string): ReadableStream<Uint8Array>;
  /** Streams `[offset, offset + length)` of a member (not hash-checked). */
  streamRange(name: string, offset: number, length: number): ReadableStream<Uint8Array>;
  /** A loader that writes members straight into caller memory, several ranges in flight. */
  loader(options?: LoaderOptions): MemberLoader;
  /** Closes what `openArchive` opened (a `ByteSource` passed in stays open). */
  close(): Promise<void>;
}

/** How `openArchive` reaches remote archives and indexes tars. */
export interface OpenArchiveOptions extends LocationOptions {
  /** Read-ahead of the tar header walk (see `indexTar`). */
  readonly readAhead?: number;
  /**
   * Most bytes a `.tgz` may inflate to (default: see `inflateBudget`, 64 MiB plus 16 times its
   * compressed size); past it, opening fails instead of filling memory.
   */
  readonly maxInflatedBytes?: number;
  /**
   * Most milliseconds from the open of a location to the archive's close (default: see
   * `loadTimeoutMs`, 30 minutes; 0: no limit): past it, requests still in flight fail with an
   * error naming the archive (redacted).
   */
  readonly loadTimeoutMs?: number;
}

/**
 * Opens a model container. A string is an `http(s)://` URL, an `s3://bucket/key` URL (signed
 * with SigV4 from the `AWS_*` variables), or a local path (a folder or a file); a file or
 * `ByteSource` is a gzip'd tar when it starts with `1f 8b`, else a tar. A tar whose first
 * member is the converter's `rill-index.json` is indexed from it (one or two range reads);
 * another tar from its headers only; a `.tgz` is decompressed once into memory.
 *
 * @example
 * ```ts ignore
 * const archive = await openArchive("model.nnef.tgz");
 * const graph = new TextDecoder().decode(await archive.read("graph.nnef"));
 * await archive.close();
 * ```
 * @throws {RangeError} a truncated tar, or a member name with `..` or an absolute path
 * @throws {SyntaxError} a file that is neither gzip nor tar, or a corrupt tar header or index
 */
export async function openArchive(
  source: string | ByteSource,
  options: OpenArchiveOptions = {},
): Promise<Archive> {
  if (typeof source !== "string") {
    return await indexSource(source, {
      ...options,
      owned: false,
      cache: options.cache || undefined,
    });
  }
  const limit = loadTimeoutMs(options.loadTimeoutMs);
  const deadline = startDeadline(
    limit,
    () =>
      new Error(
        `${redactLocation(source)}: not read within ${secondsText(limit)} (RILL_LOAD_TIMEOUT)`,
      ),
  );
  const signal = options.http?.signal === undefined
    ? deadline.signal
    : AbortSignal.any([options.http.signal, deadline.signal]);
  let archive: Archive;
  try {
    const opened = await openLocation(source, { ...options, http: { ...options.http, signal } });
    archive = opened === undefined
      ? await openFolderArchive(source)
      : await indexSource(opened.source, { ...options, owned: true, cache: opened.cache });
  } catch (e) {
    deadline.clear();
    throw e;
  }
  const close = archive.close;
  return {
    ...archive,
    close(): Promise<void> {
      deadline.clear();
      return close();
    },
  };
}

/**
 * True for a remote source whose reads nothing pins to one version of the object (a server
 * that sends neither ETag nor Last-Modified): two reads may see two versions.
 */
function unpinned(source: ByteSource): boolean {
  return "pinned" in source && (source as { pinned?: unknown }).pinned === false;
}

/** The strong ETag of a source that has one (an HTTP source). */
function etagOf(source: ByteSource): string | undefined {
  const etag = (source as { etag?: unknown }).etag;
  return typeof etag === "string" ? etag : undefined;
}

interface IndexRead {
  readonly members: ArchiveMember[];
  readonly bytesRead: number;
}

/** Reads the converter's index when the tar starts with it; undefined for another tar. */
async function readIndexMember(source: ByteSource, size: number): Promise<IndexRead | undefined> {
  if (size < TAR_BLOCK) return undefined;
  const block = await source.read(0, TAR_BLOCK);
  const header = parseTarHeader(block, 0, source.name);
  if (header.name !== ARCHIVE_INDEX_MEMBER || header.type !== "0") return undefined;
  if (TAR_BLOCK + header.size > size) {
    throw new RangeError(
      `${source.name}: truncated tar: ${ARCHIVE_INDEX_MEMBER} needs ${header.size} bytes at offset ${TAR_BLOCK}, the archive ends at ${size}`,
    );
  }
  const text = await source.read(TAR_BLOCK, header.size);
  const entries = parseArchiveIndex(text, source.name, size, TAR_BLOCK + header.size);
  const members: ArchiveMember[] = [
    { name: ARCHIVE_INDEX_MEMBER, offset: TAR_BLOCK, size: header.size },
    ...entries.map((e) => ({ name: e.name, offset: e.offset, size: e.size, sha256: e.sha256 })),
  ];
  return { members, bytesRead: TAR_BLOCK + header.size };
}

/** How `indexSource` lists a tar or `.tgz`, and who closes the bytes. */
export interface IndexSourceOptions {
  /** Whether the archive closes `source` when it closes (default false). */
  readonly owned?: boolean;
  /** Where verified members of an indexed remote tar are kept (see `LocationOptions.cache`). */
  readonly cache?: DiskCache | undefined;
  /** Read-ahead of the tar header walk (see `indexTar`). */
  readonly readAhead?: number;
  /** Most bytes a `.tgz` may inflate to (see `inflateBudget`). */
  readonly maxInflatedBytes?: number;
}

/**
 * The archive index step: the members of the tar or `.tgz` behind `source`, from the
 * converter's `rill-index.json` when the tar begins with it (one or two range reads), else
 * from a walk over its headers; a `.tgz` is inflated once into memory and listed by the walk
 * that holds it to its budget.
 *
 * @throws {RangeError} a truncated tar, a duplicate member, or a name that leaves the archive
 * @throws {SyntaxError} a file that is neither gzip nor tar, or a corrupt tar header or index
 * @throws {TypeError} a remote tar without an index whose server pins no version of it
 */
export async function indexSource(
  source: ByteSource,
  options: IndexSourceOptions = {},
): Promise<Archive> {
  const owned = options.owned ?? false;
  const cache = options.cache;
  try {
    const size = await source.size();
    if (await isGzip(source, size)) {
      const { tar, entries } = await inflateTar(
        source,
        size,
        inflateBudget(size, options.maxInflatedBytes),
      );
      if (owned) await source.close();
      return tarArchive({
        name: source.name,
        kind: "tgz",
        source: memorySource(tar, source.name),
        members: tarMembers(entries, source.name),
        indexBytesRead: size,
        indexed: false,
        etag: undefined,
        cache: undefined,
        owned: false,
      });
    }
    if (size === 0) throw new SyntaxError(`${source.name}: empty file, not a tar archive`);
    const fromIndex = await readIndexMember(source, size);
    if (fromIndex !== undefined) {
      return tarArchive({
        name: source.name,
        kind: "tar",
        source,
        members: fromIndex.members,
        indexBytesRead: GZIP_MAGIC_BYTES + fromIndex.bytesRead,
        indexed: true,
        etag: etagOf(source),
        cache,
        owned,
      });
    }
    if (unpinned(source)) {
      // Without an index's sha256s, nothing would tell members of two versions apart.
      throw new TypeError(
        `${source.name}: the server sends neither ETag nor Last-Modified, and the tar has no ` +
          `${ARCHIVE_INDEX_MEMBER} to check its members against: a change on the server while ` +
          `it loads would mix two versions unseen. Convert it with 'rill convert' (which writes ` +
          `the index) or serve it where it gets an ETag`,
      );
    }
    const index = await indexTar(source, {
      name: source.name,
      ...(options.readAhead === undefined ? {} : { readAhead: options.readAhead }),
    });
    return tarArchive({
      name: source.name,
      kind: "tar",
      source,
      members: tarMembers(index.entries, source.name),
      indexBytesRead: GZIP_MAGIC_BYTES + index.bytesRead,
      indexed: false,
      etag: etagOf(source),
      cache: undefined,
      owned,
    });
  } catch (e) {
    if (owned) await source.close();
    throw e;
  }
}

/**
 * The members of a tar's entries, by normalized name.
 *
 * @throws {RangeError} a name that leaves the archive, or one that appears twice (which copy a
 * reader takes is not defined, so neither is)
 */
function tarMembers(entries: TarEntry[], archive: string): ArchiveMember[] {
  const byName = new Map<string, ArchiveMember>();
  for (const entry of entries) {
    const member = normalizeMemberName(entry.name, archive);
    if (member === undefined) continue;
    const first = byName.get(member);
    if (first !== undefined) {
      throw new RangeError(
        `${archive}: member '${member}' appears twice (data at offsets ${first.offset} and ${entry.offset})`,
      );
    }
    byName.set(member, { name: member, offset: entry.offset, size: entry.size });
  }
  return [...byName.values()];
}

interface TarArchiveParts {
  readonly name: string;
  readonly kind: "tar" | "tgz";
  readonly source: ByteSource;
  readonly members: ArchiveMember[];
  readonly indexBytesRead: number;
  readonly indexed: boolean;
  readonly etag: string | undefined;
  /** Only for indexed members of a remote object. */
  readonly cache: DiskCache | undefined;
  readonly owned: boolean;
}

/** A stream that hashes what passes and errors at the end when it is not `sha256`. */
function verifying(
  archive: string,
  member: string,
  sha256: string,
): TransformStream<Uint8Array, Uint8Array> {
  const hash = createSha256();
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      hash.update(chunk);
      controller.enqueue(chunk);
    },
    flush(controller) {
      const got = hash.hex();
      if (got !== sha256) controller.error(hashMismatch(archive, member, got, sha256));
    },
  });
}

function tarArchive(parts: TarArchiveParts): Archive {
  const { name, source, cache, etag } = parts;
  const byName = new Map(parts.members.map((m) => [m.name, m]));
  const sorted = [...byName.values()].sort((
    a,
    b,
  ) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  function get(member: string): ArchiveMember {
    const found = byName.get(member);
    if (found === undefined) throw new RangeError(`${name}: no member '${member}'`);
    return found;
  }
  function cacheKey(m: { name: string; sha256?: string }): MemberCacheKey | undefined {
    if (cache === undefined || m.sha256 === undefined) return undefined;
    return { url: name, etag, member: m.name, sha256: m.sha256 };
  }
  function streamRange(member: string, offset: number, length: number) {
    const m = get(member);
    checkMemberRange(name, m, offset, length);
    return source.stream(m.offset + offset, length);
  }
  function loader(options?: LoaderOptions): MemberLoader {
    return createRangeLoader({
      name,
      member: (member: string) => byName.get(member),
      streamRange,
      streamObject: (offset: number, length: number) => source.stream(offset, length),
      cache,
      cacheKey,
    }, options);
  }
  return {
    name,
    kind: parts.kind,
    indexBytesRead: parts.indexBytesRead,
    indexed: parts.indexed,
    etag,
    members: () => [...sorted],
    member: (member: string) => byName.get(member),
    has: (member: string) => byName.has(member),
    async read(member: string): Promise<Uint8Array> {
      const bytes = new Uint8Array(get(member).size);
      const once = loader();
      try {
        await once.load(member, bytes);
      } finally {
        await once.close();
      }
      return bytes;
    },
    async readRange(member: string, offset: number, length: number): Promise<Uint8Array> {
      const m = get(member);
      checkMemberRange(name, m, offset, length);
      return await source.read(m.offset + offset, length);
    },
    stream(member: string): ReadableStream<Uint8Array> {
      const m = get(member);
      const stream = source.stream(m.offset, m.size);
      return m.sha256 === undefined
        ? stream
        : stream.pipeThrough(verifying(name, m.name, m.sha256));
    },
    streamRange,
    loader,
    async close(): Promise<void> {
      if (parts.owned) await source.close();
    },
  };
}

function checkMemberRange(archive: string, m: ArchiveMember, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
    offset + length > m.size
  ) {
    throw new RangeError(
      `${archive}: range [${offset}, ${
        offset + length
      }) is outside member '${m.name}' of ${m.size} bytes`,
    );
  }
}

async function listFolder(root: string, prefix: string, out: ArchiveMember[]): Promise<void> {
  for await (const entry of Deno.readDir(prefix === "" ? root : `${root}/${prefix}`)) {
    if (entry.name.startsWith(".")) continue;
    const rel = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    const info = entry.isSymlink ? await Deno.stat(`${root}/${rel}`) : entry;
    if (info.isDirectory) await listFolder(root, rel, out);
    else if (info.isFile) {
      out.push({ name: rel, offset: 0, size: (await Deno.stat(`${root}/${rel}`)).size });
    }
  }
}

/** A folder holding an archive's members as files. */
export async function openFolderArchive(root: string): Promise<Archive> {
  const members: ArchiveMember[] = [];
  await listFolder(root, "", members);
  members.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const byName = new Map(members.map((m) => [m.name, m]));
  function get(member: string): ArchiveMember {
    const found = byName.get(member);
    if (found === undefined) throw new RangeError(`${root}: no member '${member}'`);
    return found;
  }
  /** A byte stream of a member's range: a BYOB reader's view is filled by the file in place. */
  function streamRange(member: string, offset: number, length: number) {
    checkMemberRange(root, get(member), offset, length);
    let file: Deno.FsFile | undefined;
    let at = offset;
    const end = offset + length;
    function release(): void {
      file?.close();
      file = undefined;
    }
    return new ReadableStream({
      type: "bytes",
      async pull(controller) {
        if (at >= end) {
          release();
          controller.close();
          return;
        }
        if (file === undefined) {
          file = await Deno.open(`${root}/${member}`);
          await file.seek(at, Deno.SeekMode.Start);
        }
        const request = controller.byobRequest;
        const view = request?.view;
        const into = request === null || view === null || view === undefined
          ? new Uint8Array(Math.min(1 << 20, end - at))
          : new Uint8Array(view.buffer, view.byteOffset, Math.min(view.byteLength, end - at));
        const n = await file.read(into).catch((e) => {
          release();
          throw e;
        });
        if (n === null) {
          release();
          throw new RangeError(`${root}/${member}: file ended at ${at}, expected ${end}`);
        }
        at += n;
        if (request === null || view === null || view === undefined) {
          controller.enqueue(into.subarray(0, n));
        } else request.respond(n);
        if (at >= end) {
          release();
          controller.close();
        }
      },
      cancel: release,
    }, { highWaterMark: 0 }) as ReadableStream<Uint8Array>;
  }
  return {
    name: root,
    kind: "folder",
    indexBytesRead: 0,
    indexed: false,
    etag: undefined,
    streamRange,
    loader(options?: LoaderOptions): MemberLoader {
      return createRangeLoader({
        name: root,
        member: (member: string) => byName.get(member),
        streamRange,
        cache: undefined,
        cacheKey: () => undefined,
      }, options);
    },
    members: () => [...members],
    member: (member: string) => byName.get(member),
    has: (member: string) => byName.has(member),
    async read(member: string): Promise<Uint8Array> {
      get(member);
      return await Deno.readFile(`${root}/${member}`);
    },
    async readRange(member: string, offset: number, length: number): Promise<Uint8Array> {
      checkMemberRange(root, get(member), offset, length);
      const source = await openFileSource(`${root}/${member}`);
      try {
        return await source.read(offset, length);
      } finally {
        await source.close();
      }
    },
    stream: (member: string) => streamRange(member, 0, get(member).size),
    close: () => Promise.resolve(),
  };
}
