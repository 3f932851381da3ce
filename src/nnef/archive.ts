import type { ByteSource } from "../storage/byte_source.ts";
import { openFileSource } from "../storage/file_source.ts";
import { type HttpSourceOptions, openHttpSource } from "../storage/http_source.ts";
import { memorySource } from "../storage/memory_source.ts";
import { indexTar, type TarEntry } from "./tar.ts";

/** A file of an archive. */
export interface ArchiveMember {
  /** Path inside the archive, `/`-separated, without a leading `./`. */
  readonly name: string;
  /** Payload offset in the tar (the decompressed tar for a `.tgz`); 0 in a folder. */
  readonly offset: number;
  readonly size: number;
}

/** An NNEF model container: a folder, a tar or a gzip'd tar. */
export interface Archive {
  /** The path, the URL (redacted) or the source name. */
  readonly name: string;
  readonly kind: "folder" | "tar" | "tgz";
  /** Bytes read from the source to list the members (for a `.tgz`, the whole compressed file). */
  readonly indexBytesRead: number;
  /** Members sorted by name. */
  members(): ArchiveMember[];
  member(name: string): ArchiveMember | undefined;
  has(name: string): boolean;
  read(name: string): Promise<Uint8Array>;
  /** Reads `[offset, offset + length)` of a member, e.g. the 128-byte header of a `.dat`. */
  readRange(name: string, offset: number, length: number): Promise<Uint8Array>;
  stream(name: string): ReadableStream<Uint8Array>;
  /** Closes what `openArchive` opened (a `ByteSource` passed in stays open). */
  close(): Promise<void>;
}

/** How `openArchive` reaches remote archives and indexes tars. */
export interface OpenArchiveOptions {
  readonly http?: HttpSourceOptions;
  /** Read-ahead of the tar header walk (see `indexTar`). */
  readonly readAhead?: number;
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

/**
 * Opens a model container. A string is an `http(s)://` URL or a local path (a folder or a
 * file); a file or `ByteSource` is a gzip'd tar when it starts with `1f 8b`, else a tar.
 * A tar is indexed from its headers only; a `.tgz` is decompressed once into memory.
 *
 * @example
 * ```ts ignore
 * const archive = await openArchive("model.nnef.tgz");
 * const graph = new TextDecoder().decode(await archive.read("graph.nnef"));
 * await archive.close();
 * ```
 * @throws {RangeError} a truncated tar, or a member name with `..` or an absolute path
 * @throws {SyntaxError} a file that is neither gzip nor tar, or a corrupt tar header
 */
export async function openArchive(
  source: string | ByteSource,
  options: OpenArchiveOptions = {},
): Promise<Archive> {
  if (typeof source !== "string") return await openTarLike(source, false, options);
  if (/^https?:\/\//i.test(source)) {
    return await openTarLike(await openHttpSource(source, options.http), true, options);
  }
  const info = await Deno.stat(source);
  if (info.isDirectory) return await openFolder(source);
  return await openTarLike(await openFileSource(source), true, options);
}

async function openTarLike(
  source: ByteSource,
  owned: boolean,
  options: OpenArchiveOptions,
): Promise<Archive> {
  try {
    const size = await source.size();
    const magic = size >= 2 ? await source.read(0, 2) : new Uint8Array(0);
    if (magic[0] === 0x1f && magic[1] === 0x8b) {
      const tar = await gunzip(source, size);
      const index = await indexTar(memorySource(tar, source.name), { name: source.name });
      if (owned) await source.close();
      return tarArchive(
        source.name,
        "tgz",
        memorySource(tar, source.name),
        index.entries,
        size,
        false,
      );
    }
    if (size === 0) throw new SyntaxError(`${source.name}: empty file, not a tar archive`);
    const index = await indexTar(source, {
      name: source.name,
      ...(options.readAhead === undefined ? {} : { readAhead: options.readAhead }),
    });
    return tarArchive(
      source.name,
      "tar",
      source,
      index.entries,
      magic.length + index.bytesRead,
      owned,
    );
  } catch (e) {
    if (owned) await source.close();
    throw e;
  }
}

async function gunzip(source: ByteSource, size: number): Promise<Uint8Array> {
  try {
    const gzip = new DecompressionStream("gzip") as unknown as TransformStream<
      Uint8Array,
      Uint8Array
    >;
    const stream = source.stream(0, size).pipeThrough(gzip);
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new RangeError(
      `${source.name}: cannot decompress gzip: ${e instanceof Error ? e.message : e}`,
      { cause: e },
    );
  }
}

function tarArchive(
  name: string,
  kind: "tar" | "tgz",
  source: ByteSource,
  entries: TarEntry[],
  indexBytesRead: number,
  owned: boolean,
): Archive {
  const byName = new Map<string, ArchiveMember>();
  for (const entry of entries) {
    const member = normalizeMemberName(entry.name, name);
    if (member !== undefined) {
      byName.set(member, { name: member, offset: entry.offset, size: entry.size });
    }
  }
  const sorted = [...byName.values()].sort((
    a,
    b,
  ) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  function get(member: string): ArchiveMember {
    const found = byName.get(member);
    if (found === undefined) throw new RangeError(`${name}: no member '${member}'`);
    return found;
  }
  return {
    name,
    kind,
    indexBytesRead,
    members: () => [...sorted],
    member: (member: string) => byName.get(member),
    has: (member: string) => byName.has(member),
    async read(member: string): Promise<Uint8Array> {
      const m = get(member);
      return await source.read(m.offset, m.size);
    },
    async readRange(member: string, offset: number, length: number): Promise<Uint8Array> {
      const m = get(member);
      checkMemberRange(name, m, offset, length);
      return await source.read(m.offset + offset, length);
    },
    stream(member: string): ReadableStream<Uint8Array> {
      const m = get(member);
      return source.stream(m.offset, m.size);
    },
    async close(): Promise<void> {
      if (owned) await source.close();
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

async function openFolder(root: string): Promise<Archive> {
  const members: ArchiveMember[] = [];
  await listFolder(root, "", members);
  members.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const byName = new Map(members.map((m) => [m.name, m]));
  function get(member: string): ArchiveMember {
    const found = byName.get(member);
    if (found === undefined) throw new RangeError(`${root}: no member '${member}'`);
    return found;
  }
  return {
    name: root,
    kind: "folder",
    indexBytesRead: 0,
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
    stream(member: string): ReadableStream<Uint8Array> {
      get(member);
      let file: Deno.FsFile | undefined;
      let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (reader === undefined) {
            file = await Deno.open(`${root}/${member}`);
            reader = file.readable.getReader();
          }
          const { value, done } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        },
        async cancel() {
          if (reader !== undefined) await reader.cancel();
          else file?.close();
        },
      }, { highWaterMark: 0 });
    },
    close: () => Promise.resolve(),
  };
}
