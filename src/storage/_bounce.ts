/** Size of the buffer a `BounceReader` reuses for every read. */
const BOUNCE_BYTES = 256 << 10;

/**
 * Reads a byte stream into one reused buffer (a BYOB reader), so a long body leaves no
 * garbage chunks behind; a stream that is not a byte stream is read chunk by chunk instead.
 * A chunk is only valid until the next `read`.
 */
export class BounceReader {
  #byob: ReadableStreamBYOBReader | undefined;
  #plain: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #bytes: number;
  #buffer: ArrayBuffer | undefined;

  constructor(stream: ReadableStream<Uint8Array>, bytes = BOUNCE_BYTES) {
    this.#bytes = bytes;
    try {
      this.#byob = stream.getReader({ mode: "byob" });
    } catch {
      this.#plain = stream.getReader();
    }
  }

  /** True when chunks are views of the reused buffer (copy them to keep them). */
  get reused(): boolean {
    return this.#byob !== undefined;
  }

  /** The next chunk; at most `max` bytes when reading into the buffer. */
  async read(max = Infinity): Promise<{ done: boolean; value: Uint8Array }> {
    if (this.#byob === undefined) {
      const { done, value } = await this.#plain!.read();
      return done ? { done: true, value: new Uint8Array(0) } : { done: false, value };
    }
    // The buffer is transferred to the stream and back; a failed read loses it.
    const buffer = this.#buffer ?? new ArrayBuffer(this.#bytes);
    this.#buffer = undefined;
    const n = Math.max(1, Math.min(max, buffer.byteLength));
    const result = await this.#byob.read(new Uint8Array(buffer, 0, n));
    if (result.value !== undefined) this.#buffer = result.value.buffer as ArrayBuffer;
    return result.done
      ? { done: true, value: new Uint8Array(0) }
      : { done: false, value: result.value as Uint8Array };
  }

  async cancel(): Promise<void> {
    await (this.#byob ?? this.#plain)!.cancel();
  }
}
