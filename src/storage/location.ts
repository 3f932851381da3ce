/**
 * The first step of the byte pipeline: the bytes behind a location (a path, an `http(s)://`
 * or `s3://` URL) as a `ByteSource`, with the disk cache that the members of a remote archive
 * go through.
 */
import type { ByteSource } from "./byte_source.ts";
import { checkCacheDir, type DiskCache, openDiskCache } from "./disk_cache.ts";
import { openFileSource } from "./file_source.ts";
import { type HttpSourceOptions, openHttpSource } from "./http_source.ts";
import { openS3Source, type S3Options } from "./s3.ts";

/** How a location is reached. */
export interface LocationOptions {
  /** For URLs, `probeBytes` defaults to 16 KiB so the first read usually holds the whole index. */
  readonly http?: HttpSourceOptions;
  /** Credentials and endpoint for `s3://` (default from the `AWS_*` variables). */
  readonly s3?: S3Options;
  /**
   * Where verified members of a remote indexed archive are kept and reused: a cache, or false
   * for none. Default for a path or URL: `$RILL_CACHE_DIR/members` when `RILL_CACHE_DIR` is
   * set, else none; for an opened `ByteSource`, none.
   */
  readonly cache?: DiskCache | false;
}

/** Probe of a remote tar: its first header and, usually, the whole index that follows. */
const REMOTE_PROBE_BYTES = 16 << 10;

/** The bytes behind a location, and the disk cache its members may use (remote ones only). */
export interface OpenedLocation {
  readonly source: ByteSource;
  readonly cache: DiskCache | undefined;
}

/**
 * Opens the source behind a path, `http(s)://` or `s3://` URL, with the disk cache a remote
 * one uses unless `options.cache` is false; undefined for a local folder (nothing is opened).
 */
export async function openLocation(
  location: string,
  options: LocationOptions,
): Promise<OpenedLocation | undefined> {
  const s3 = /^s3:\/\//i.test(location);
  if (s3 || /^https?:\/\//i.test(location)) {
    let cache = options.cache === false ? undefined : options.cache;
    if (cache === undefined && options.cache !== false) {
      cache = openDiskCache();
      if (cache !== undefined) await checkCacheDir(cache.dir, "RILL_CACHE_DIR");
    }
    const http = { probeBytes: REMOTE_PROBE_BYTES, ...options.http };
    const source = s3
      ? await openS3Source(location, { ...options.s3, http })
      : await openHttpSource(location, http);
    return { source, cache };
  }
  if ((await Deno.stat(location)).isDirectory) return undefined;
  return { source: await openFileSource(location), cache: undefined };
}
