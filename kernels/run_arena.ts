/**
 * Where one graph run keeps its activations in the kernels' memory: each op writes its result
 * here and the ops after it read that result in place, so an activation is copied only at the
 * run's edges (its inputs in, its outputs out). What a run allocates lives until the run ends,
 * or, once the region is full, until no live value of the run holds it: a long prompt's layers
 * then reuse the space of the layers before them.
 *
 * @module
 */

/** What a run arena needs of the kernels: their memory. */
export interface ArenaHost {
  /** The memory the arena lies in. */
  readonly memory: WebAssembly.Memory;
  /** Where allocations are recorded (offset, bytes) while a step is recorded, else null. */
  readonly tape?: { readonly allocs: number[] } | null;
}

/** The views a run's live values hold: what a collection keeps. */
export type ArenaRoots = () => Iterable<ArrayBufferView>;

/** One allocation: its bytes [start, end) and the step that made it. */
interface Allocation {
  readonly start: number;
  readonly end: number;
  readonly step: number;
}

/**
 * A fixed region of a shared memory, handed to one run at a time (`open`/`close`): a bump
 * allocator that frees everything at once, and, when full, frees what the run's live values
 * (`collectWith`) no longer hold, except what the current step (`step`) allocated. Views over
 * it stay valid while the memory grows, as views over a shared memory do; a non-shared memory
 * detaches them, so it gets none.
 */
export class RunArena {
  readonly #memory: WebAssembly.Memory;
  readonly #host: ArenaHost;
  /** Every buffer object the views were made over (a shared memory gets a new one per growth). */
  readonly #buffers = new WeakSet<ArrayBufferLike>();
  readonly #base: number;
  readonly #end: number;
  #open = false;
  /** Bytes asked for in the last run, kept or not: what the region would have needed. */
  #asked = 0;
  /** This run's allocations in address order; the last one ends where the next bump begins. */
  #allocations: Allocation[] = [];
  #step = 0;
  #roots: ArenaRoots | null = null;
  #collections = 0;

  /** The region [base, base + bytes) of `host.memory`, which must be shared. */
  constructor(host: ArenaHost, base: number, bytes: number) {
    if (!(host.memory.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError("A run arena needs a shared memory: growth detaches views of others");
    }
    this.#memory = host.memory;
    this.#host = host;
    this.#base = base;
    this.#end = base + bytes;
  }

  /** Takes the arena for a run; false when another run holds it. */
  open(): boolean {
    if (this.#open) return false;
    this.#open = true;
    this.#asked = 0;
    this.#collections = 0;
    this.#reset();
    return true;
  }

  /** Ends the run: every allocation is freed, and views into them must no longer be read. */
  close(): void {
    this.#open = false;
    this.#reset();
  }

  #reset(): void {
    this.#allocations = [];
    this.#roots = null;
  }

  /**
   * Lets the arena, when full, free what `roots` no longer hold. The run must then call `step`
   * before each of its steps: what the current step allocated is never freed.
   */
  collectWith(roots: ArenaRoots): void {
    this.#roots = roots;
  }

  /** A new step begins: what the steps before it allocated may be freed once unheld. */
  step(): void {
    this.#step++;
  }

  /** Collections in the current (or last) run. */
  get collections(): number {
    return this.#collections;
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
    const offset = this.#alloc(bytes);
    if (offset !== null) this.#host.tape?.allocs.push(offset, bytes);
    return offset;
  }

  #alloc(bytes: number): number | null {
    if (!this.#open) return null;
    this.#asked += bytes;
    const offset = align16(this.#allocations.at(-1)?.end ?? this.#base);
    if (offset + bytes <= this.#end) {
      this.#allocations.push({ start: offset, end: offset + bytes, step: this.#step });
      return offset;
    }
    if (!this.#roots) return null;
    this.#collect(this.#roots);
    return this.#fit(bytes);
  }

  /** Frees the allocations of earlier steps that no root lies in. */
  #collect(roots: ArenaRoots): void {
    this.#collections++;
    const keep = this.#allocations.map((a) => a.step === this.#step);
    const all = this.#allocations;
    for (const view of roots()) {
      if (!this.holds(view)) continue;
      // A view may span adjacent allocations (parts of a value viewed as one): keep them all.
      const end = view.byteOffset + view.byteLength;
      let i = this.#allocationAt(view.byteOffset);
      if (i < 0) continue;
      for (; i < all.length && all[i]!.start < end; i++) keep[i] = true;
    }
    this.#allocations = this.#allocations.filter((_, i) => keep[i]);
  }

  /** Index of the allocation that holds byte `offset`, or -1. */
  #allocationAt(offset: number): number {
    const all = this.#allocations;
    let [lo, hi] = [0, all.length - 1];
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (all[mid]!.start <= offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi >= 0 && offset < all[hi]!.end ? hi : -1;
  }

  /** The first gap that holds `bytes` (16-byte aligned), taken, or null. */
  #fit(bytes: number): number | null {
    const all = this.#allocations;
    for (let i = 0; i <= all.length; i++) {
      const offset = align16(all[i - 1]?.end ?? this.#base);
      if (offset + bytes > (all[i]?.start ?? this.#end)) continue;
      all.splice(i, 0, { start: offset, end: offset + bytes, step: this.#step });
      return offset;
    }
    return null;
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

function align16(offset: number): number {
  return Math.ceil(offset / 16) * 16;
}
