/**
 * Where one graph run keeps its activations in the kernels' memory: each op writes its result
 * here and the ops after it read that result in place, so an activation is copied only at the
 * run's edges (its inputs in, its outputs out). Everything in it lives until the run ends.
 *
 * @module
 */

/** What a run arena needs of the kernels: their memory. */
export interface ArenaHost {
  /** The memory the arena lies in. */
  readonly memory: WebAssembly.Memory;
}

/**
 * A fixed region of a shared memory, handed to one run at a time (`open`/`close`): a bump
 * allocator that frees everything at once. Views over it stay valid while the memory grows,
 * as views over a shared memory do; a non-shared memory detaches them, so it gets none.
 */
export class RunArena {
  readonly #memory: WebAssembly.Memory;
  /** Every buffer object the views were made over (a shared memory gets a new one per growth). */
  readonly #buffers = new WeakSet<ArrayBufferLike>();
  readonly #base: number;
  readonly #end: number;
  #top: number;
  #open = false;
  /** Bytes asked for in the last run, kept or not: what the region would have needed. */
  #asked = 0;

  /** The region [base, base + bytes) of `host.memory`, which must be shared. */
  constructor(host: ArenaHost, base: number, bytes: number) {
    if (!(host.memory.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError("A run arena needs a shared memory: growth detaches views of others");
    }
    this.#memory = host.memory;
    this.#base = base;
    this.#end = base + bytes;
    this.#top = base;
  }

  /** Takes the arena for a run; false when another run holds it. */
  open(): boolean {
    if (this.#open) return false;
    this.#open = true;
    this.#top = this.#base;
    this.#asked = 0;
    return true;
  }

  /** Ends the run: every allocation is freed, and views into them must no longer be read. */
  close(): void {
    this.#open = false;
    this.#top = this.#base;
  }

  /** True between `open` and `close`. */
  get isOpen(): boolean {
    return this.#open;
  }

  /** Capacity in bytes. */
  get bytes(): number {
    return this.#end - this.#base;
  }

  /** Bytes the current (or last) run asked for, including what did not fit. */
  get asked(): number {
    return this.#asked;
  }

  /** Offset of `bytes` more bytes (16-byte aligned), or null when closed or full. */
  alloc(bytes: number): number | null {
    if (!this.#open) return null;
    this.#asked += bytes;
    const offset = Math.ceil(this.#top / 16) * 16;
    if (offset + bytes > this.#end) return null;
    this.#top = offset + bytes;
    return offset;
  }

  /** An f32 view of `length` items at `offset`, which `holds` then recognizes. */
  view(offset: number, length: number): Float32Array {
    const buffer = this.#memory.buffer;
    this.#buffers.add(buffer);
    return new Float32Array(buffer, offset, length);
  }

  /** True when `view` was made by `view` (or is part of one): its items lie in this region. */
  holds(view: ArrayBufferView): boolean {
    return this.#buffers.has(view.buffer) && view.byteOffset >= this.#base &&
      view.byteOffset + view.byteLength <= this.#end;
  }
}
