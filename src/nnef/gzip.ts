/**
 * Decompression of a `.tgz` within a budget, so that a gzip bomb (a few MB that inflate to
 * many GB) is a clear error after at most the budget's worth of work, not a process that eats
 * the machine's memory.
 */
import type { ByteSource } from "../storage/byte_source.ts";
import { envVar } from "../storage/_env.ts";
import { concatBytes } from "../storage/bytes.ts";
import { isTarEndBlock, TAR_BLOCK, type TarEntry, TarHeaderWalk, tarPadded } from "./tar.ts";

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

/** A `.tgz` inflated whole: the tar, and its regular files as the header walk found them. */
export interface InflatedTar {
  readonly tar: Uint8Array;
  readonly entries: TarEntry[];
}

/**
 * The whole tar inside a `.tgz`, inflated within `budget`, with its files listed by the same
 * walk: refused as soon as a tar header declares more than the budget leaves, or the bytes
 * pass it (trailing data included, which is read to the end so that the gzip CRC-32 is
 * checked).
 *
 * @throws {RangeError} past the budget, a truncated tar, or when the gzip stream is corrupt
 * @throws {SyntaxError} a corrupt tar header
 */
export async function inflateTar(
  source: ByteSource,
  size: number,
  budget: number,
): Promise<InflatedTar> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  const walk = new TarWalk(source.name, budget);
  try {
    for await (const chunk of gunzipStream(source, size, budget)) {
      chunks.push(chunk);
      length += chunk.length;
      walk.push(chunk);
    }
  } catch (e) {
    if (e instanceof RangeError || e instanceof SyntaxError) throw e;
    throw new RangeError(
      `${source.name}: cannot decompress gzip: ${e instanceof Error ? e.message : e}`,
      { cause: e },
    );
  }
  walk.finish();
  return { tar: concatBytes(chunks, length), entries: walk.entries };
}

/** Follows the headers of a tar as its bytes arrive, holding what they declare to a budget. */
class TarWalk {
  readonly #archive: string;
  readonly #budget: number;
  /** Chunks not entirely before `#next`, and the stream offset of the first one. */
  #chunks: Uint8Array[] = [];
  #chunksAt = 0;
  #length = 0;
  /** Offset of the next header. */
  #next = 0;
  readonly #headers: TarHeaderWalk;
  /** The last entry's name and end, to tell a tar cut inside it. */
  #last: { readonly name: string; readonly start: number; readonly size: number } | undefined;
  /** The regular files walked so far, in archive order. */
  readonly entries: TarEntry[] = [];
  ended = false;

  constructor(archive: string, budget: number) {
    this.#archive = archive;
    this.#budget = budget;
    this.#headers = new TarHeaderWalk(archive);
  }

  /** Takes the next chunk of the tar and walks the headers it completes. */
  push(chunk: Uint8Array): void {
    if (this.ended) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    while (!this.ended && this.#next + TAR_BLOCK <= this.#length) {
      const block = this.#bytes(this.#next, TAR_BLOCK);
      if (isTarEndBlock(block)) {
        this.ended = true;
        this.#chunks = [];
        return;
      }
      const step = this.#headers.header(block, this.#next);
      const { size } = step;
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new SyntaxError(
          `${this.#archive}: bad size of the tar entry at offset ${this.#next}`,
        );
      }
      const end = this.#next + TAR_BLOCK + tarPadded(size);
      if (end > this.#budget) {
        throw overBudget(
          this.#archive,
          this.#budget,
          `the tar entry at offset ${this.#next} declares ${size} bytes`,
        );
      }
      if (step.kind === "record") {
        this.#headers.checkRecordSize(step.type, size, this.#next);
        // A PAX record may give the size of the entry that follows: wait for all of it.
        if (this.#next + TAR_BLOCK + size > this.#length) return;
        this.#headers.record(step.type, this.#bytes(this.#next + TAR_BLOCK, size), this.#next);
      } else if (step.kind === "entry") {
        const start = this.#next + TAR_BLOCK;
        if (step.regular) this.entries.push({ name: step.name, offset: start, size });
        this.#last = { name: step.name, start, size };
      }
      this.#next = end;
      this.#drop();
    }
  }

  /**
   * Checks, once the stream has ended, that the tar was not cut inside a header or a member
   * (a tar without its end marker is whole when its last member is).
   *
   * @throws {RangeError} a truncated tar
   */
  finish(): void {
    if (this.ended) return;
    const last = this.#last;
    if (last !== undefined && last.start + last.size > this.#length) {
      throw new RangeError(
        `${this.#archive}: truncated tar: member '${last.name}' needs ${last.size} bytes at offset ${last.start}, the archive ends at ${this.#length}`,
      );
    }
    if (this.#next < this.#length && this.#next + TAR_BLOCK > this.#length) {
      throw new RangeError(
        `${this.#archive}: truncated tar: header at offset ${this.#next} needs ${TAR_BLOCK} bytes, the archive ends at ${this.#length}`,
      );
    }
  }

  /** Bytes `[at, at + n)` of the stream, all received, none before `#chunksAt`. */
  #bytes(at: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    let chunkAt = this.#chunksAt;
    for (const chunk of this.#chunks) {
      const from = Math.max(at, chunkAt);
      const to = Math.min(at + n, chunkAt + chunk.length);
      if (from < to) out.set(chunk.subarray(from - chunkAt, to - chunkAt), from - at);
      chunkAt += chunk.length;
      if (chunkAt >= at + n) break;
    }
    return out;
  }

  /** Forgets the chunks that end before the next header. */
  #drop(): void {
    while (this.#chunks.length > 0 && this.#chunksAt + this.#chunks[0]!.length <= this.#next) {
      this.#chunksAt += this.#chunks.shift()!.length;
    }
  }
}
