/** Size of the buffer a `BounceReader` reuses for every read. */
const BOUNCE_BYTES = 256 << 10;

/**
 * Buffers of readers that ended or were cancelled, taken by the next ones: a model's load opens
 * a reader per range (two, through an HTTP source), and each new buffer would otherwise stay
 * resident as garbage until a collection.
 */
const spare: ArrayBuffer[] = [];
const SPARE_MAX = 8;

/**
 * Reads a byte stream into one reused buffer (a BYOB reader), so a long body leaves no
 * garbage chunks behind; a stream that is not a byte stream is read chunk by chunk instead.
 * A chunk is only valid until the next `read` or `cancel`.
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
    const buffer = this.#buffer ??
      (this.#bytes === BOUNCE_BYTES ? spare.pop() : undefined) ??
      new ArrayBuffer(this.#bytes);
    this.#buffer = undefined;
    const n = Math.max(1, Math.min(max, buffer.byteLength));
    const result = await this.#byob.read(new Uint8Array(buffer, 0, n));
    if (result.value !== undefined) this.#buffer = result.value.buffer as ArrayBuffer;
    if (result.done) this.#release();
    return result.done
      ? { done: true, value: new Uint8Array(0) }
      : { done: false, value: result.value as Uint8Array };
  }

  async cancel(): Promise<void> {
    this.#release();
    await (this.#byob ?? this.#plain)!.cancel();
  }

  #release(): void {
    const buffer = this.#buffer;
    this.#buffer = undefined;
    if (buffer?.byteLength === BOUNCE_BYTES && spare.length < SPARE_MAX) spare.push(buffer);
  }
}
