/** Chunk size of the streams that sources build out of range reads. */
const STREAM_CHUNK_BYTES = 1 << 20;

/** Throws a RangeError unless `[offset, offset + length)` lies within `[0, size)`. */
export function checkRange(name: string, offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`${name}: invalid range offset ${offset}, length ${length}`);
  }
  if (offset + length > size) {
    throw new RangeError(
      `${name}: range [${offset}, ${offset + length}) is past the end (size ${size})`,
    );
  }
}

/**
 * A pull stream of `[offset, offset + length)` read in chunks with `read`. Given `readInto`, it
 * is a byte stream: a BYOB reader's view is filled in place, with no chunk allocated.
 */
export function chunkedStream(
  offset: number,
  length: number,
  read: (offset: number, length: number) => Promise<Uint8Array>,
  readInto?: (offset: number, view: Uint8Array) => Promise<void>,
): ReadableStream<Uint8Array> {
  let at = offset;
  const end = offset + length;
  if (readInto !== undefined) {
    return new ReadableStream({
      type: "bytes",
      async pull(controller) {
        if (at >= end) {
          controller.close();
          return;
        }
        const request = controller.byobRequest;
        const view = request?.view;
        if (request === null || view === null || view === undefined) {
          const n = Math.min(STREAM_CHUNK_BYTES, end - at);
          const bytes = await read(at, n);
          at += n;
          controller.enqueue(bytes);
        } else {
          const n = Math.min(view.byteLength, end - at);
          await readInto(at, new Uint8Array(view.buffer, view.byteOffset, n));
          at += n;
          request.respond(n);
        }
        if (at >= end) controller.close();
      },
    }, { highWaterMark: 0 }) as ReadableStream<Uint8Array>;
  }
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (at >= end) {
        controller.close();
        return;
      }
      const n = Math.min(STREAM_CHUNK_BYTES, end - at);
      const bytes = await read(at, n);
      at += n;
      controller.enqueue(bytes);
      if (at >= end) controller.close();
    },
  }, { highWaterMark: 0 });
}
