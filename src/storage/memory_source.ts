import type { ByteSource } from "./byte_source.ts";
import { checkRange, chunkedStream } from "./_range.ts";

/** A `ByteSource` over bytes already in memory; reads return copies. */
export function memorySource(bytes: Uint8Array, name = "memory"): ByteSource {
  return {
    name,
    size: () => Promise.resolve(bytes.length),
    read(offset: number, length: number): Promise<Uint8Array> {
      try {
        checkRange(name, offset, length, bytes.length);
      } catch (e) {
        return Promise.reject(e);
      }
      return Promise.resolve(bytes.slice(offset, offset + length));
    },
    stream(offset: number, length: number): ReadableStream<Uint8Array> {
      checkRange(name, offset, length, bytes.length);
      return chunkedStream(offset, length, (at, n) => Promise.resolve(bytes.slice(at, at + n)));
    },
    close: () => Promise.resolve(),
  };
}
