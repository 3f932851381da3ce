import { envVar } from "./_env.ts";
import { sha256Hex } from "./sha256.ts";

/** Where a verified archive member lives in the cache: the object, its version and content. */
export interface MemberCacheKey {
  /** The object's URL (redacted: no credentials, no presigned query). */
  readonly url: string;
  /** The object's ETag when the server sent one. */
  readonly etag: string | undefined;
  /** The member's name in the archive. */
  readonly member: string;
  /** The member's sha256 from the archive index; only indexed members are cached. */
  readonly sha256: string;
}

/**
 * A folder of verified archive members, reused on the next start without a network request.
 * Files are written whole to a temporary name and renamed, so a reader never sees half a member.
 */
export interface DiskCache {
  /** The cache's folder. */
  readonly dir: string;
  /** Reads a cached member into `target` (exactly its size); false when it is not cached. */
  readInto(key: MemberCacheKey, target: Uint8Array): Promise<boolean>;
  /** Stores a member's verified bytes (copied out in slices, so `bytes` may view WASM memory). */
  write(key: MemberCacheKey, bytes: Uint8Array): Promise<void>;
  /** Forgets a member whose cached bytes turned out wrong. */
  remove(key: MemberCacheKey): Promise<void>;
}

const SLICE = 1 << 20;

/** Folders `checkCacheDir` found writable in this process. */
const WRITABLE = new Set<string>();

/**
 * Checks once per process that files can be created in `dir` (made if missing), so that a
 * cache that cannot work is an error at start instead of a cache silently never written.
 * `what` names the setting in the error (`RILL_CACHE_DIR`).
 *
 * @throws {Error} naming `what` and the folder, with the file system's reason
 */
export async function checkCacheDir(dir: string, what: string): Promise<void> {
  if (WRITABLE.has(dir)) return;
  const probe = `${dir}/.rill-write-test-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(probe, new Uint8Array(0), { createNew: true });
    await Deno.remove(probe);
  } catch (e) {
    throw new Error(
      `${what} '${dir}' cannot be written (${e instanceof Error ? e.message : e}); fix its ` +
        `permissions or unset it`,
      { cause: e },
    );
  }
  WRITABLE.add(dir);
}

/**
 * Opens the member cache in `dir`, or in `$RILL_CACHE_DIR/members` when `dir` is not given;
 * undefined (no cache) when neither is set.
 */
export function openDiskCache(dir?: string): DiskCache | undefined {
  const env = envVar("RILL_CACHE_DIR");
  const root = dir ?? (env === undefined ? undefined : `${env}/members`);
  if (root === undefined) return undefined;
  function pathOf(key: MemberCacheKey): string {
    const id = sha256Hex(`${key.url}\n${key.etag ?? ""}\n${key.member}\n${key.sha256}`);
    return `${root}/${id.slice(0, 2)}/${id}`;
  }
  async function openIfSized(key: MemberCacheKey, size: number): Promise<Deno.FsFile | undefined> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(pathOf(key), { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    if ((await file.stat()).size !== size) {
      file.close();
      return undefined;
    }
    return file;
  }
  return {
    dir: root,
    async readInto(key: MemberCacheKey, target: Uint8Array): Promise<boolean> {
      const file = await openIfSized(key, target.length);
      if (file === undefined) return false;
      try {
        const shared = target.buffer instanceof SharedArrayBuffer;
        const scratch = shared ? new Uint8Array(Math.min(SLICE, target.length)) : undefined;
        let at = 0;
        while (at < target.length) {
          const view = scratch ?? target.subarray(at);
          const n = await file.read(view.subarray(0, Math.min(view.length, target.length - at)));
          if (n === null) return false;
          if (scratch !== undefined) target.set(scratch.subarray(0, n), at);
          at += n;
        }
        return true;
      } finally {
        file.close();
      }
    },
    async write(key: MemberCacheKey, bytes: Uint8Array): Promise<void> {
      const path = pathOf(key);
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      const temp = `${path}.partial-${crypto.randomUUID().slice(0, 8)}`;
      const file = await Deno.open(temp, { write: true, createNew: true });
      try {
        for (let at = 0; at < bytes.length; at += SLICE) {
          const slice = bytes.slice(at, Math.min(bytes.length, at + SLICE));
          let done = 0;
          while (done < slice.length) done += await file.write(slice.subarray(done));
        }
      } catch (e) {
        file.close();
        await Deno.remove(temp).catch(() => {});
        throw e;
      }
      file.close();
      await Deno.rename(temp, path);
    },
    async remove(key: MemberCacheKey): Promise<void> {
      await Deno.remove(pathOf(key)).catch(() => {});
    },
  };
}
