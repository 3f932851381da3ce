/**
 * Decompression of a `.tgz` within a budget, so that a gzip bomb (a few MB that inflate to
 * many GB) is a clear error after at most the budget's worth of work, not a process that eats
 * the machine's memory.
 */
import type { ByteSource } from "../storage/byte_source.ts";
import { envVar } from "../storage/_env.ts";

/** Bytes any `.tgz` may inflate to beyond its ratio allowance. */
const INFLATE_FLOOR = 64 << 20;
/**
 * Inflated bytes allowed per compressed byte. Weights compress little (torch_to_nnef writes
 * gzip level 0), so real archives stay far below it; a bomb is ~1000.
 */
const INFLATE_RATIO = 16;

/**
 * The most bytes a `.tgz` of `compressedBytes` may inflate to: `limit` when given, else
 * `$RILL_MAX_INFLATED_BYTES` when set, else 64 MiB plus 16 times its compressed size.
 *
 * @throws {RangeError} for a `RILL_MAX_INFLATED_BYTES` that is not a positive integer
 */
export function inflateBudget(compressedBytes: number, limit?: number): number {
  if (limit !== undefined) return limit;
  const env = envVar("RILL_MAX_INFLATED_BYTES");
  if (env !== undefined) {
    const value = Number(env);
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`RILL_MAX_INFLATED_BYTES must be a positive integer, got '${env}'`);
    }
    return value;
  }
  return INFLATE_FLOOR + INFLATE_RATIO * compressedBytes;
}

/**
 * The error of an archive that inflates, or whose tar headers say it will (`why`), past
 * `budget`.
 */
export function overBudget(archive: string, budget: number, why?: string): RangeError {
  return new RangeError(
    `${archive}: inflates to more than ${budget} bytes, the budget of this .tgz${
      why === undefined ? "" : ` (${why})`
    }; a gzip bomb? RILL_MAX_INFLATED_BYTES raises the limit`,
  );
}

/**
 * Compressed bytes handed to the inflater at a time: it inflates each whole, so this bounds one
 * output chunk (deflate's ratio is at most about 1032).
 */
const INFLATE_STEP = 64 << 10;

/**
 * The decompressed bytes of the gzip stream in `source`, which error with a `RangeError` (and
 * stop decompressing) as soon as they pass `budget`.
 */
export function gunzipStream(
  source: ByteSource,
  size: number,
  budget: number,
): ReadableStream<Uint8Array> {
  const gunzip = new DecompressionStream("gzip") as unknown as TransformStream<
    Uint8Array,
    Uint8Array
  >;
  const steps = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      for (let at = 0; at < chunk.length; at += INFLATE_STEP) {
        controller.enqueue(chunk.subarray(at, at + INFLATE_STEP));
      }
    },
  });
  let total = 0;
  const bound = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      total += chunk.length;
      if (total > budget) controller.error(overBudget(source.name, budget));
      else controller.enqueue(chunk);
    },
  });
  return source.stream(0, size).pipeThrough(steps).pipeThrough(gunzip).pipeThrough(bound);
}

/** Bytes `isGzip` reads. */
export const GZIP_MAGIC_BYTES = 2;

/** True when the bytes of `source` (of `size` bytes) begin with the gzip magic `1f 8b`. */
export async function isGzip(source: ByteSource, size: number): Promise<boolean> {
  if (size < GZIP_MAGIC_BYTES) return false;
  const magic = await source.read(0, GZIP_MAGIC_BYTES);
  return magic[0] === 0x1f && magic[1] === 0x8b;
}
