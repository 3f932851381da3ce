/**
 * The paged KV cache: every sequence's cache tensors in fixed-size blocks of one pool.
 *
 * A cache tensor of the graph (e.g. `in_cache_key_3`, shape (1, n_kv_heads, P, head_dim)) is
 * split at its past axis into `outer` (the dims before it: kv heads), the positions, and
 * `inner` (the dims after it). The pool keeps, per cache tensor, a region of `capacity`
 * blocks of `blockSize` positions, in f16 (default; subnormal halves stored as zero, see
 * `f32ToF16Normal` in `tensor/f16.ts`) or f32. The outer indices lie in equal
 * runs of `runHeads` (one per kernel thread where they divide, see {@link runHeadsFor}):
 * each run is `capacity` blocks of (runHeads, blockSize, inner) items. A sequence owns a
 * block table (block ids in position order) that is the same for all its cache tensors:
 * position p of outer index o = r * runHeads + j lies at item `r * runItems +
 * ((table[p / blockSize] * runHeads + j) * blockSize + p % blockSize) * inner`. Threads that
 * take the kv heads apart a run at a time then each read one stream of blocks; slices of
 * blocks shared by all the heads read slower over two threads than over one. A growing
 * sequence takes one more block and copies nothing; blocks are reference-counted so that
 * sequences may share a prefix.
 *
 * With WASM kernels the regions live in the kernels' memory, where the attention kernel reads
 * them in place; so does each sequence's block table ({@link BlockTable}).
 */
import type { Kernels, RunArena } from "../../kernels/mod.ts";
import { type Tensor, volume } from "../tensor/tensor.ts";
import { contiguous, isStrided } from "../ops/common.ts";
import { kernelInts, kernelOffset } from "../ops/fused.ts";
import type { PagedKv, PagedTensor } from "../tensor/paged.ts";
import { flushSubnormalF16 } from "../tensor/f16.ts";

/** Item type of the stored cache. */
export type KvItemType = "f16" | "f32";

/** One cache tensor of the graph, as the pool stores it. */
export interface CacheLayout {
  /** Shape of the tensor with 0 positions on its past axis. */
  readonly shape: readonly number[];
  /** The past axis. */
  readonly axis: number;
}

/** Options of a {@link KvPool}. */
export interface KvPoolOptions {
  /** Positions per block (default 16). */
  readonly blockSize?: number;
  /** Blocks the pool holds. */
  readonly blocks: number;
  /** Item type of the stored cache (default "f16"). */
  readonly itemType?: KvItemType;
  /** Kernels whose memory holds the pool, or null for plain arrays. */
  readonly kernels: Kernels | null;
  /** Let `grow` enlarge the pool (a copy of every region); a shared pool has a fixed size. */
  readonly growable?: boolean;
}

/** Default positions per block. */
export const DEFAULT_BLOCK_SIZE = 16;

interface Region {
  readonly outer: number;
  readonly inner: number;
  /** Outer indices per run of blocks. */
  readonly runHeads: number;
  /** Items of one block across the runs: outer * blockSize * inner. */
  readonly blockItems: number;
  /** Byte offset in the kernels' memory, or -1 for a plain array. */
  offset: number;
  /** The plain array when not in the kernels' memory. */
  array: Float32Array | Float16Array | null;
}

/**
 * A sequence's cache tensor in the pool. Its `data`, for readers other than the fused
 * attention, is a copy gathered on first read.
 */
class PagedView implements PagedTensor {
  readonly dtype = "f32";
  readonly shape: readonly number[];
  readonly paged: PagedKv;
  readonly #pool: KvPool;
  readonly #layout: number;
  #gathered: Float32Array | null = null;

  constructor(shape: readonly number[], paged: PagedKv, pool: KvPool, layout: number) {
    this.shape = shape;
    this.paged = paged;
    this.#pool = pool;
    this.#layout = layout;
  }

  get data(): Float32Array {
    return this.#gathered ??= this.#pool.gather(this.#layout, this.paged);
  }

  moved(by: number): PagedView {
    const shape = [...this.shape];
    shape[this.#pool.layouts[this.#layout]!.axis]! += by;
    const paged = { ...this.paged, length: this.paged.length + by };
    return new PagedView(shape, paged, this.#pool, this.#layout);
  }
}

/**
 * A sequence's block ids in position order, one array for the table's whole life (the views
 * made of it read the ids it holds now). Over a pool in the kernels' memory, the ids are kept
 * there too, where the kernels read them in place instead of a copy made for every call.
 */
export class BlockTable {
  readonly #pool: KvPool;
  readonly #ids: number[] = [];
  /** Byte offset of the ids' copy in the kernels' memory (-1: none yet), and its room. */
  #offset = -1;
  #room = 0;

  /** An empty table of blocks of `pool`. */
  constructor(pool: KvPool) {
    this.#pool = pool;
  }

  /** The block ids, in position order. */
  get ids(): readonly number[] {
    return this.#ids;
  }

  /** Byte offset of the ids in the kernels' memory, or -1 when the pool is not there. */
  get offset(): number {
    return this.#offset;
  }

  /** Appends block `id`. */
  push(id: number): void {
    this.#ids.push(id);
    const kernels = this.#pool.kernels;
    if (!kernels) return;
    if (this.#ids.length > this.#room) {
      // Room for every block of the pool, so that it moves again only when the pool grows.
      this.#room = Math.max(this.#pool.capacity, 2 * this.#room, this.#ids.length);
      this.#offset = kernels.allocWeights(this.#room * 4, 4).offset;
      new Int32Array(kernels.memory.buffer, this.#offset, this.#ids.length).set(this.#ids);
      return;
    }
    new Int32Array(kernels.memory.buffer, this.#offset + 4 * (this.#ids.length - 1), 1)[0] = id;
  }

  /** Empties the table (the blocks are the caller's to release). */
  clear(): void {
    this.#ids.length = 0;
  }
}

/** Blocks of fixed size for the cache tensors of every sequence of one model. */
export class KvPool {
  /** Positions per block. */
  readonly blockSize: number;
  /** Item type of the cache (`f16` by default). */
  readonly itemType: KvItemType;
  /** Bytes of one stored item. */
  readonly #itemBytes: number;
  /** The cache tensors of one sequence, one layout per cache input of the graph. */
  readonly layouts: readonly CacheLayout[];
  /** The kernels whose memory holds the blocks, or null (plain arrays). */
  readonly kernels: Kernels | null;
  readonly #regions: Region[];
  readonly #growable: boolean;
  #capacity: number;
  /** Reference count per block (0: free). */
  #refs: Int32Array;
  /** Free block ids, the lowest last (taken first). */
  #free: number[];

  /** A pool of `options.blocks` blocks for caches of these layouts. */
  constructor(layouts: readonly CacheLayout[], options: KvPoolOptions) {
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (!Number.isInteger(blockSize) || blockSize < 1) {
      throw new RangeError(`KV block size must be a positive integer: received ${blockSize}`);
    }
    if (!Number.isInteger(options.blocks) || options.blocks < 0) {
      throw new RangeError(
        `KV pool blocks must be a non-negative integer: received ${options.blocks}`,
      );
    }
    this.blockSize = blockSize;
    this.itemType = options.itemType ?? "f16";
    this.#itemBytes = this.itemType === "f16" ? 2 : 4;
    this.layouts = layouts;
    this.kernels = options.kernels;
    this.#growable = options.growable ?? false;
    this.#capacity = 0;
    this.#refs = new Int32Array(0);
    this.#free = [];
    const threads = Math.max(1, options.kernels?.maxThreads ?? 1);
    this.#regions = layouts.map((l) => {
      const outer = volume(l.shape.slice(0, l.axis));
      const inner = volume(l.shape.slice(l.axis + 1));
      const runHeads = runHeadsFor(outer, threads);
      return {
        outer,
        inner,
        runHeads,
        blockItems: outer * blockSize * inner,
        offset: -1,
        array: null,
      };
    });
    this.#resize(options.blocks);
  }

  /** Bytes of one block across all the cache tensors. */
  get blockBytes(): number {
    return this.#regions.reduce((n, r) => n + r.blockItems * this.#itemBytes, 0);
  }

  /** Blocks the pool holds. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Blocks no sequence holds. */
  get freeBlocks(): number {
    return this.#free.length;
  }

  /** A free block, referenced once, or null when none is left. */
  allocate(): number | null {
    const id = this.#free.pop();
    if (id === undefined) return null;
    this.#refs[id] = 1;
    return id;
  }

  /** One more reference to block `id` (a sequence sharing it). */
  retain(id: number): void {
    if (!(this.#refs[id]! > 0)) throw new RangeError(`KV block ${id} is not allocated`);
    this.#refs[id]!++;
  }

  /** Drops one reference to block `id`; the last one frees it. */
  release(id: number): void {
    if (!(this.#refs[id]! > 0)) throw new RangeError(`KV block ${id} is not allocated`);
    if (--this.#refs[id]! === 0) this.#free.splice(this.#freeSlot(id), 0, id);
  }

  /**
   * Where free block `id` goes to keep `#free` descending. A sequence then takes the lowest
   * ids, and its blocks follow one another in memory as its table does: attention reads them
   * in a stream that the hardware prefetches. A reversed table, which pushing freed blocks
   * onto the end gave the next sequence, halved attention's speed.
   */
  #freeSlot(id: number): number {
    const free = this.#free;
    let [lo, hi] = [0, free.length];
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (free[mid]! > id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** References to block `id`. */
  refs(id: number): number {
    return this.#refs[id] ?? 0;
  }

  /**
   * Enlarges a growable pool to `blocks` (at least doubling), keeping every block's contents
   * and id.
   *
   * @throws {RangeError} when the pool has a fixed size
   */
  grow(blocks: number): void {
    if (!this.#growable) throw new RangeError("This KV pool has a fixed size");
    if (blocks > this.#capacity) this.#resize(Math.max(blocks, this.#capacity * 2));
  }

  #resize(blocks: number): void {
    const old = this.#capacity;
    const before = this.#regions.map((r) => ({ offset: r.offset, array: r.array }));
    for (const r of this.#regions) {
      const items = r.blockItems * blocks;
      if (this.kernels) {
        const bytes = Math.max(items, 1) * this.#itemBytes;
        r.offset = this.kernels.allocWeights(bytes, 64).offset;
      } else {
        r.array = this.itemType === "f16" ? new Float16Array(items) : new Float32Array(items);
      }
    }
    // Views are taken after every allocation: growing the kernels' memory detaches older ones.
    this.#regions.forEach((r, i) => {
      if (old === 0) return;
      const from = this.kernels
        ? this.#view(before[i]!.offset, r.blockItems * old)
        : before[i]!.array!.subarray(0, r.blockItems * old);
      const to = this.#view(r.offset, r.blockItems * blocks, r.array);
      // Each run of blocks moves to where the longer runs put it.
      const [run, next] = [this.#runItems(r, old), this.#runItems(r, blocks)];
      for (let i = 0; i * r.runHeads < r.outer; i++) {
        to.set(from.subarray(i * run, (i + 1) * run), i * next);
      }
    });
    const refs = new Int32Array(blocks);
    refs.set(this.#refs);
    this.#refs = refs;
    for (let id = blocks - 1; id >= old; id--) this.#free.push(id);
    // Keep the free list sorted so that `pop` takes the lowest id.
    this.#free.sort((a, b) => b - a);
    this.#capacity = blocks;
  }

  /** `items` items at byte `offset` of the kernels' memory, or of `array` when given. */
  #view(
    offset: number,
    items: number,
    array: Float32Array | Float16Array | null = null,
  ): Float32Array | Float16Array {
    if (array) return array.subarray(0, items);
    const buffer = this.kernels!.memory.buffer;
    return this.itemType === "f16"
      ? new Float16Array(buffer, offset, items)
      : new Float32Array(buffer, offset, items);
  }

  /** The items of region `r` (a fresh view: the kernels' memory may have grown). */
  #items(r: Region): Float32Array | Float16Array {
    return this.#view(r.offset, r.blockItems * this.#capacity, r.array);
  }

  /** Byte offset of cache tensor `layout`'s region in the kernels' memory. */
  offsetOf(layout: number): number {
    return this.#regions[layout]!.offset;
  }

  /** Items from one run of blocks to the next in region `r` (of `capacity` blocks). */
  #runItems(r: Region, capacity = this.#capacity): number {
    return capacity * r.runHeads * this.blockSize * r.inner;
  }

  /** Item of region `r` where position `p % blockSize` of block `block`, outer index o, lies. */
  #itemAt(r: Region, block: number, o: number, row: number): number {
    const j = o % r.runHeads;
    return (o - j) / r.runHeads * this.#runItems(r) +
      ((block * r.runHeads + j) * this.blockSize + row) * r.inner;
  }

  /**
   * Writes `rows` (the cache tensor's new positions: its shape with `count` on the past axis)
   * at positions `at..at + count` of the sequence with block `table`. In the kernels' memory
   * the kernels store them, reading in place rows that a kernel op left in `arena`.
   *
   * @throws {RangeError} when the table holds too few blocks
   */
  write(
    layout: number,
    table: BlockTable | readonly number[],
    at: number,
    rows: Tensor,
    arena?: RunArena | null,
  ): void {
    const ids = table instanceof BlockTable ? table.ids : table;
    const r = this.#regions[layout]!;
    const axis = this.layouts[layout]!.axis;
    const count = rows.shape[axis]!;
    if (Math.ceil((at + count) / this.blockSize) > ids.length) {
      throw new RangeError(
        `KV cache write of positions ${at}..${at + count} needs ${
          Math.ceil((at + count) / this.blockSize)
        } blocks, the sequence holds ${ids.length}`,
      );
    }
    const { outer, inner } = r;
    const k = this.kernels;
    if (k) {
      // Kv head g, position s at g * heads + s * positions (items where the rows lie).
      const { items, heads, positions } = rowsOf(rows, axis, count, inner);
      const mark = k.mark();
      try {
        const src = kernelOffset(k, arena, items);
        const resident = table instanceof BlockTable ? table.offset : -1;
        const tableAt = resident >= 0 ? resident : kernelInts(k, ids);
        k.storeKvPaged(
          src,
          heads,
          positions,
          r.offset,
          tableAt,
          this.blockSize,
          this.itemType,
          outer,
          inner,
          at,
          count,
          r.runHeads,
          this.#runItems(r) * this.#itemBytes,
        );
      } finally {
        k.reset(mark);
      }
      return;
    }
    const f32 = contiguous(rows).data as Float32Array; // (outer, count, inner)
    // Converted once, then copied as raw items (a typed-array copy without conversion).
    const src = this.itemType === "f16"
      ? cacheHalves(f32)
      : new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
    const all = this.#items(r);
    const items = this.itemType === "f16"
      ? new Uint16Array(all.buffer, all.byteOffset, all.length)
      : new Uint32Array(all.buffer, all.byteOffset, all.length);
    const B = this.blockSize;
    for (let p = at; p < at + count; p++) {
      const block = ids[Math.floor(p / B)]!;
      for (let o = 0; o < outer; o++) {
        const from = (o * count + (p - at)) * inner;
        items.set(src.subarray(from, from + inner), this.#itemAt(r, block, o, p % B));
      }
    }
  }

  /** The first `length` positions of a sequence's cache tensor `layout`, read in place. */
  view(layout: number, table: BlockTable | readonly number[], length: number): PagedTensor {
    const shape = [...this.layouts[layout]!.shape];
    shape[this.layouts[layout]!.axis] = length;
    const r = this.#regions[layout]!;
    const paged: PagedKv = {
      offset: r.offset,
      memory: this.kernels?.memory ?? null,
      blockSize: this.blockSize,
      itemType: this.itemType,
      outer: r.outer,
      inner: r.inner,
      runHeads: r.runHeads,
      runStride: this.#runItems(r) * this.#itemBytes,
      table: table instanceof BlockTable ? table.ids : table,
      tableAt: table instanceof BlockTable ? table.offset : -1,
      length,
    };
    return new PagedView(shape, paged, this, layout);
  }

  /** A row-major f32 copy of a paged view (for readers other than the fused attention). */
  gather(layout: number, view: PagedKv): Float32Array {
    const r = this.#regions[layout]!;
    const { outer, inner } = r;
    const B = this.blockSize;
    const L = view.length;
    const out = new Float32Array(outer * L * inner); // (outer, L, inner)
    const items = this.#items(r);
    for (let p = 0; p < L; p += B) {
      const count = Math.min(B, L - p);
      const block = view.table[p / B]!;
      for (let o = 0; o < outer; o++) {
        const from = this.#itemAt(r, block, o, 0);
        out.set(items.subarray(from, from + count * inner), (o * L + p) * inner);
      }
    }
    return out;
  }
}

/**
 * Kv heads per run of blocks: a run per thread that may read them (the attention gives the
 * threads a run at a time), of equal runs (no padding): the largest divisor of `outer` not
 * above its share of the threads (e.g. 6 of 12 at two threads, 1 of 3).
 */
export function runHeadsFor(outer: number, threads: number): number {
  let heads = Math.max(1, Math.ceil(outer / threads));
  while (outer % heads !== 0) heads--;
  return heads;
}

/**
 * The items of a cache write (outer, count, inner) and the item strides of its kv heads and
 * positions: where a view (1, heads, count, head dim), such as a transposed (1, count, heads,
 * head dim), holds them, else a row-major copy.
 */
function rowsOf(
  rows: Tensor,
  axis: number,
  count: number,
  inner: number,
): { items: Float32Array; heads: number; positions: number } {
  if (
    isStrided(rows) && rows.data instanceof Float32Array && axis === rows.shape.length - 2 &&
    axis >= 1 && rows.strides[axis + 1] === 1 && rows.shape.slice(0, axis - 1).every((d) => d === 1)
  ) {
    const [heads, positions] = [rows.strides[axis - 1]!, rows.strides[axis]!];
    const span = (rows.shape[axis - 1]! - 1) * heads + (count - 1) * positions + inner;
    return { items: rows.data.subarray(rows.offset, rows.offset + span), heads, positions };
  }
  return { items: contiguous(rows).data as Float32Array, heads: count * inner, positions: inner };
}

/** Values as the f16 bits a cache holds (`f32ToF16Normal`), converted in bulk. */
function cacheHalves(f32: Float32Array): Uint16Array {
  const halves = new Uint16Array(new Float16Array(f32).buffer);
  for (let i = 0; i < halves.length; i++) halves[i] = flushSubnormalF16(halves[i]!);
  return halves;
}
