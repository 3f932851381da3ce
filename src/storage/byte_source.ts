/**
 * Random access to the bytes of one object: a local file, a buffer in memory, or a
 * remote object read with HTTP Range requests.
 */
export interface ByteSource {
  /** Where the bytes come from, for error messages (credentials redacted). */
  readonly name: string;
  /** Total size in bytes. */
  size(): Promise<number>;
  /** Reads `[offset, offset + length)`; throws a RangeError past the end. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Streams `[offset, offset + length)` in chunks, without holding the range whole. */
  stream(offset: number, length: number): ReadableStream<Uint8Array>;
  /** Releases file handles or connections. */
  close(): Promise<void>;
}
