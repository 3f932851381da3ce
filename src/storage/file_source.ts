import type { ByteSource } from "./byte_source.ts";
import { checkRange, chunkedStream } from "./_range.ts";

/**
 * Opens a local file as a `ByteSource`. Reads seek then read on one handle, one at a time.
 *
 * @throws {Deno.errors.NotFound} when the file does not exist
 */
export async function openFileSource(path: string): Promise<ByteSource> {
  const file = await Deno.open(path, { read: true });
  let size: number;
  try {
    size = (await file.stat()).size;
  } catch (e) {
    file.close();
    throw e;
  }
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

  async function fillNow(offset: number, out: Uint8Array): Promise<void> {
    if (closed) throw new TypeError(`${path}: read after close`);
    await file.seek(offset, Deno.SeekMode.Start);
    let filled = 0;
    while (filled < out.length) {
      const n = await file.read(out.subarray(filled));
      if (n === null) {
        throw new RangeError(
          `${path}: file ended at ${offset + filled}, expected ${offset + out.length}`,
        );
      }
      filled += n;
    }
  }

  async function readNow(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await fillNow(offset, out);
    return out;
  }

  /** Fills `out` from `offset`, queued behind the reads before it (they share the seek). */
  function readInto(offset: number, out: Uint8Array): Promise<void> {
    const result = queue.then(() => fillNow(offset, out));
    queue = result.catch(() => undefined);
    return result;
  }

  function read(offset: number, length: number): Promise<Uint8Array> {
    try {
      checkRange(path, offset, length, size);
    } catch (e) {
      return Promise.reject(e);
    }
    const result = queue.then(() => readNow(offset, length));
    queue = result.catch(() => undefined);
    return result;
  }

  return {
    name: path,
    size: () => Promise.resolve(size),
    read,
    stream(offset: number, length: number): ReadableStream<Uint8Array> {
      checkRange(path, offset, length, size);
      return chunkedStream(offset, length, read, readInto);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await queue;
      file.close();
    },
  };
}
