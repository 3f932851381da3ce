/**
 * A tar walked as its bytes flow (the inside of a `.tgz`, inflated chunk by chunk): headers
 * through {@link TarHeaderWalk}, each file entry's payload handed to the reader as it passes,
 * everything the headers declare held to a budget before any of it is inflated.
 */
import { concatBytes } from "../storage/bytes.ts";
import type { ByteSource } from "../storage/byte_source.ts";
import { gunzipStream, overBudget } from "./gzip.ts";
import { isTarEndBlock, TAR_BLOCK, type TarEntry, TarHeaderWalk, tarPadded } from "./tar.ts";

/** A file entry of a streamed tar, as it begins. */
export interface TarStreamEntry {
  /** The name as written (after PAX and GNU long names), not normalized. */
  readonly name: string;
  /** True for a regular file (type `0` or `7`). */
  readonly regular: boolean;
  /** Offset of its payload in the tar. */
  readonly offset: number;
  /** Payload bytes. */
  readonly size: number;
}

/** What a {@link TarStreamWalk} tells its reader. */
export interface TarStreamReader {
  /** An entry begins; true to be handed its payload (else it is skipped). */
  begin(entry: TarStreamEntry): boolean;
  /** Bytes of the payload of the entry taken last, in order (views of the pushed chunks). */
  payload(bytes: Uint8Array): void;
  /** The entry taken last is complete (at once for an empty one). */
  end(): void;
}

/** Walks a tar pushed chunk by chunk, within `budget` bytes of tar. */
export class TarStreamWalk {
  readonly #archive: string;
  readonly #budget: number;
  readonly #reader: TarStreamReader;
  readonly #headers: TarHeaderWalk;
  /** Tar offset of the next byte pushed. */
  #at = 0;
  /** A header's bytes so far, when it spans chunks. */
  #pending = new Uint8Array(0);
  /** Payload bytes left of the entry taken, or to skip (padding, entries not taken). */
  #remaining = 0;
  #skip = 0;
  #taken: TarStreamEntry | undefined;
  #record:
    | { type: "x" | "L"; size: number; at: number; chunks: Uint8Array[]; got: number }
    | undefined;
  #ended = false;

  /** A walk that reports to `reader`, naming `archive` in its errors. */
  constructor(archive: string, budget: number, reader: TarStreamReader) {
    this.#archive = archive;
    this.#budget = budget;
    this.#reader = reader;
    this.#headers = new TarHeaderWalk(archive);
  }

  /** True once the end-of-archive block passed (what follows is ignored). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Takes the next bytes of the tar.
   *
   * @throws {SyntaxError} a corrupt header or PAX record
   * @throws {RangeError} an entry past the budget, or a record larger than a record may be
   */
  push(chunk: Uint8Array): void {
    while (chunk.length > 0 && !this.#ended) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length);
        this.#skip -= n;
        this.#at += n;
        chunk = chunk.subarray(n);
      } else if (this.#taken !== undefined) {
        const n = Math.min(this.#remaining, chunk.length);
        this.#reader.payload(chunk.subarray(0, n));
        this.#remaining -= n;
        this.#at += n;
        chunk = chunk.subarray(n);
        if (this.#remaining === 0) this.#endEntry();
      } else if (this.#record !== undefined) {
        const record = this.#record;
        const n = Math.min(record.size - record.got, chunk.length);
        record.chunks.push(chunk.slice(0, n));
        record.got += n;
        this.#at += n;
        chunk = chunk.subarray(n);
        if (record.got === record.size) {
          this.#headers.record(record.type, concatBytes(record.chunks, record.size), record.at);
          this.#skip = tarPadded(record.size) - record.size;
          this.#record = undefined;
        }
      } else {
        const take = chunk.subarray(0, TAR_BLOCK - this.#pending.length);
        const joined = new Uint8Array(this.#pending.length + take.length);
        joined.set(this.#pending);
        joined.set(take, this.#pending.length);
        this.#pending = joined;
        chunk = chunk.subarray(take.length);
        if (this.#pending.length === TAR_BLOCK) this.#header();
      }
    }
  }

  /**
   * Checks, once the stream has ended, that the tar was not cut inside a header, a record or
   * a member (a tar without its end marker is whole when its last member is).
   *
   * @throws {RangeError} a truncated tar
   */
  finish(): void {
    if (this.#ended) return;
    const at = this.#at;
    if (this.#taken !== undefined) {
      const { name, offset, size } = this.#taken;
      throw new RangeError(
        `${this.#archive}: truncated tar: member '${name}' needs ${size} bytes at offset ${offset}, the archive ends at ${at}`,
      );
    }
    if (this.#record !== undefined || this.#pending.length > 0) {
      throw new RangeError(
        `${this.#archive}: truncated tar: the header or record at offset ${
          this.#record?.at ?? at - this.#pending.length
        } is cut at ${at}`,
      );
    }
  }

  #header(): void {
    const block = this.#pending;
    const headerAt = this.#at;
    this.#pending = new Uint8Array(0);
    this.#at += TAR_BLOCK;
    if (isTarEndBlock(block)) {
      this.#ended = true;
      return;
    }
    const step = this.#headers.header(block, headerAt);
    const { size } = step;
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new SyntaxError(`${this.#archive}: bad size of the tar entry at offset ${headerAt}`);
    }
    // Refused on what the header declares, before any of the payload is inflated.
    if (this.#at + tarPadded(size) > this.#budget) {
      throw overBudget(
        this.#archive,
        this.#budget,
        `the tar entry at offset ${headerAt} declares ${size} bytes`,
      );
    }
    if (step.kind === "record") {
      this.#headers.checkRecordSize(step.type, size, headerAt);
      if (size > 0) this.#record = { type: step.type, size, at: headerAt, chunks: [], got: 0 };
      return;
    }
    const entry = step.kind === "entry"
      ? { name: step.name, regular: step.regular, offset: this.#at, size }
      : undefined;
    if (entry === undefined || !this.#reader.begin(entry)) {
      this.#skip = tarPadded(size);
      return;
    }
    this.#taken = entry;
    this.#remaining = size;
    if (size === 0) this.#endEntry();
  }

  #endEntry(): void {
    const size = this.#taken!.size;
    this.#taken = undefined;
    this.#skip = tarPadded(size) - size;
    this.#reader.end();
  }
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
  const entries: TarEntry[] = [];
  const walk = new TarStreamWalk(source.name, budget, {
    begin(entry) {
      if (entry.regular) entries.push({ name: entry.name, offset: entry.offset, size: entry.size });
      return false;
    },
    payload() {},
    end() {},
  });
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
  return { tar: concatBytes(chunks, length), entries };
}
