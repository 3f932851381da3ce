/**
 * Typed binding of the WASM SIMD kernels: every kernel takes byte offsets into the
 * module's memory (`Kernels.memory`) and element counts, never arrays.
 *
 * Memory layout, low to high: the module's stack and data, one private stack per worker,
 * the activation arena (`alloc`/`reset`, fixed capacity), the run arena (`openRun`, on a
 * shared memory only), then the weights region (`allocWeights`), which grows the memory up
 * to the 4 GiB wasm32 ceiling.
 *
 * @module
 */

import type { KernelExports } from "./_job.ts";
import { ThreadPool } from "./pool.ts";
import { ThreadPolicy } from "./thread_policy.ts";
import { RunArena } from "./run_arena.ts";
import type { KernelOps, Q4Layout, WeightSlot } from "./kernel_types.ts";
import {
  checkQ4k,
  type Fn,
  isDim,
  isPositiveInteger,
  type KernelHost,
  type KernelTape,
  Ops,
  Q4_0_BLOCK_BYTES,
  QK,
  throwBadDim,
} from "./ops.ts";

export type {
  AttentionShape,
  KernelOps,
  KvItem,
  MatmulTarget,
  PagedAttentionCall,
  PagedAttentionShape,
  Q4Layout,
  WeightSlot,
} from "./kernel_types.ts";
export { type KernelCall, type KernelHost, type KernelTape, Ops } from "./ops.ts";

export { ThreadPolicy } from "./thread_policy.ts";
export { type ArenaHost, type ArenaRoots, RunArena } from "./run_arena.ts";
export type { ThreadPolicyOptions } from "./thread_policy.ts";

/** Which SIMD build runs: relaxed SIMD (`i32x4.relaxed_dot_i8x16_i7x16_add`) or plain simd128. */
export type KernelVariant = "relaxed" | "simd128";

/** The wasm32 address space: 65536 pages of 64 KiB. */
export const WASM32_MAX_BYTES = 4 * 1024 * 1024 * 1024;

const PAGE = 65536;
const WORKER_STACK_BYTES = 256 * 1024;
const DEFAULT_ARENA_BYTES = 64 * 1024 * 1024;
/**
 * The run arena: a decode step of a 1.1B Llama keeps about 3 MB of activations per sequence,
 * so 32 MiB holds a batch of ten; a longer run reuses what its dead values held.
 */
const RUN_ARENA_BYTES = 32 * 1024 * 1024;

/** Options of {@linkcode loadKernels}. */
export interface LoadKernelsOptions {
  /** Threads for matmuls and attention, main thread included. Default `navigator.hardwareConcurrency`. */
  threads?: number;
  /** `"auto"` (default) picks relaxed SIMD only if its functional self-test passes. */
  variant?: "auto" | KernelVariant;
  /** Capacity of the activation arena in bytes. Default 64 MiB. */
  arenaBytes?: number;
  /**
   * Capacity of the run arena (`openRun`) in bytes, where a run keeps its activations; once
   * full, a run reuses what its dead values held. Default 32 MiB; 0 for none.
   */
  runArenaBytes?: number;
}

/**
 * The loaded kernels with their memory. Create with {@linkcode loadKernels}; `close()` stops
 * the workers.
 */
export class Kernels extends Ops implements KernelHost {
  /** The module's memory (shared wherever the platform allows it); offsets index into it. */
  readonly memory: WebAssembly.Memory;
  /** The SIMD build in use. */
  readonly variant: KernelVariant;
  /** Threads available (main thread + workers). */
  readonly maxThreads: number;
  /** The scalar twins (single thread), for tests and baselines. */
  readonly scalar: KernelOps;
  /** Adaptive thread count fed by `beginStep`/`endStep`. */
  readonly policy: ThreadPolicy;
  #exports: KernelExports;
  #pool: ThreadPool | null;
  #threads: number;
  #arenaBase: number;
  #arenaEnd: number;
  #arenaTop: number;
  #run: RunArena | null;
  #weightsBase: number;
  #top: number;
  #scratch = new Map<string, { offset: number; bytes: number }>();
  #stepStart = 0;
  #q4Streams = 1;
  #q4I32Sums = false;
  #q4TileFrom = 8;
  #stepThreads = 1;
  #stepWork = 1;
  #closed = false;
  /** `memory.buffer.byteLength`, which costs ~90 ns per read on a shared memory. */
  #memoryBytes: number;
  /**
   * @internal Where the calls and run-arena allocations go while a graph step is recorded
   * (`src/graph/replay.ts`), else null.
   */
  tape: KernelTape | null = null;

  /** @internal use {@linkcode loadKernels} */
  constructor(
    init: {
      memory: WebAssembly.Memory;
      exports: KernelExports;
      variant: KernelVariant;
      pool: ThreadPool | null;
      arenaBase: number;
      arenaBytes: number;
      runBytes: number;
    },
  ) {
    super(init.exports, "", null, init.pool);
    this.memory = init.memory;
    this.#memoryBytes = init.memory.buffer.byteLength;
    this.variant = init.variant;
    this.#exports = init.exports;
    this.#pool = init.pool;
    this.maxThreads = init.pool?.size ?? 1;
    this.#threads = this.maxThreads;
    this.policy = new ThreadPolicy(this.maxThreads);
    this.scalar = new Ops(init.exports, "_generic", this, null);
    this.#arenaBase = init.arenaBase;
    this.#arenaTop = init.arenaBase;
    this.#arenaEnd = init.arenaBase + init.arenaBytes;
    this.#run = init.runBytes > 0 ? new RunArena(this, this.#arenaEnd, init.runBytes) : null;
    this.#weightsBase = this.#arenaEnd + init.runBytes;
    this.#top = this.#weightsBase;
  }

  /**
   * The run arena for one graph run, or null when another run holds it or the memory is not
   * shared. The run ends with `close()`; its views must not be read after that.
   */
  openRun(): RunArena | null {
    return this.#run?.open() ? this.#run : null;
  }

  /** Threads the next matmul or attention uses (1..maxThreads). */
  get threads(): number {
    return this.#threads;
  }

  set threads(n: number) {
    if (!Number.isInteger(n) || n < 1 || n > this.maxThreads) {
      throw new RangeError(
        `Thread count must be an integer in 1..${this.maxThreads}: received ${n}`,
      );
    }
    this.#threads = n;
  }

  /**
   * Weight streams the Q4_0 matmuls of one to seven tokens read side by side over `"rows8"`
   * weights: 1, or {@linkcode Kernels.maxQ4Streams} (that many runs of rows at once). The
   * outputs are the same bits either way; which is faster depends on the machine's memory
   * (`tuneQ4` measures it). The simd128 build reads one stream whatever is set.
   *
   * @throws {RangeError} for any other count
   */
  get q4Streams(): number {
    return this.#q4Streams;
  }

  set q4Streams(n: number) {
    if (n !== 1 && n !== this.maxQ4Streams) {
      throw new RangeError(`Q4_0 weight streams must be 1 or ${this.maxQ4Streams}: received ${n}`);
    }
    (this.#exports.set_q4_0_streams as (n: number) => void)(n);
    this.#q4Streams = n;
  }

  /**
   * Whether the Q4_0 products of `"rows8"` weights (the passes of one to four tokens, and the
   * prompt tiles from {@linkcode Kernels.q4TileFrom} tokens) sum dot products in i32 lanes
   * (`i32x4.relaxed_dot_i8x16_i7x16_add`, one instruction where the CPU has AVX-VNNI) rather
   * than i16 lanes. The same bits either way; `tuneQ4` measures which is faster. The
   * simd128 build ignores it.
   */
  get q4I32Sums(): boolean {
    return this.#q4I32Sums;
  }

  set q4I32Sums(on: boolean) {
    (this.#exports.set_q4_0_i32_sums as (on: number) => void)(on ? 1 : 0);
    this.#q4I32Sums = on;
  }

  /**
   * The fewest tokens a Q4_0 product runs through the prompt tiles (2 to 8, default 8) rather
   * than passes of one to four tokens over the weights. The same bits either way; `tuneQ4`
   * measures which is faster. The simd128 build keeps 8.
   *
   * @throws {RangeError} outside 2..8
   */
  get q4TileFrom(): number {
    return this.#q4TileFrom;
  }

  set q4TileFrom(tokens: number) {
    if (!Number.isInteger(tokens) || tokens < 2 || tokens > 8) {
      throw new RangeError(`Q4_0 tiles must start at 2 to 8 tokens: received ${tokens}`);
    }
    (this.#exports.set_q4_0_tile_from as (tokens: number) => void)(tokens);
    this.#q4TileFrom = tokens;
  }

  /** The streams {@linkcode Kernels.q4Streams} can be set to besides 1. */
  get maxQ4Streams(): number {
    return (this.#exports.q4_0_streams_max as () => number)();
  }

  /** Bytes of one Q8_0-quantized activation row of length k (depends on the variant). */
  q8RowBytes(k: number): number {
    return this.#exports.q8_0_row_bytes(k);
  }

  /**
   * Allocates `bytes` in the activation arena (16-byte aligned by default).
   *
   * @throws {RangeError} when the arena is full
   */
  alloc(bytes: number, align = 16): number {
    if (!isDim(bytes)) throwBadDim("alloc", { bytes });
    const offset = Math.ceil(this.#arenaTop / align) * align;
    if (offset + bytes > this.#arenaEnd) {
      throw new RangeError(
        `Activation arena is full: ${bytes} bytes requested, ${this.#arenaEnd - this.#arenaTop} ` +
          `of ${this.#arenaEnd - this.#arenaBase} left (raise 'arenaBytes')`,
      );
    }
    this.#arenaTop = offset + bytes;
    return offset;
  }

  /** Current arena top, to pass to `reset` later. */
  mark(): number {
    return this.#arenaTop;
  }

  /** Frees every arena allocation made after `mark` (default: all of them). */
  reset(mark: number = this.#arenaBase): void {
    this.#arenaTop = Math.min(Math.max(mark, this.#arenaBase), this.#arenaTop);
  }

  /**
   * Reserves `bytes` for weights (or any long-lived buffer such as a KV cache) and grows
   * the memory to hold them. Write the tensor into the returned view once; keep `offset`.
   *
   * @throws {RangeError} when the memory would pass the 4 GiB wasm32 ceiling or cannot grow
   */
  allocWeights(bytes: number, align = 16): WeightSlot {
    if (!isDim(bytes)) throwBadDim("allocWeights", { bytes });
    const offset = Math.ceil(this.#top / align) * align;
    this.#grow(offset + bytes, bytes);
    this.#top = offset + bytes;
    return { offset, bytes: new Uint8Array(this.memory.buffer, offset, bytes) };
  }

  /** Byte offset where the weights region starts: `allocWeights` reserves from here on. */
  get weightsOffset(): number {
    return this.#weightsBase;
  }

  /** Bytes reserved so far in the weights region. */
  get weightBytes(): number {
    return this.#top - this.#weightsBase;
  }

  #grow(end: number, request: number): void {
    if (end > WASM32_MAX_BYTES) {
      throw new RangeError(
        `Model does not fit in wasm32 memory: ${request} more bytes would end at byte ${end}, ` +
          `past the ${WASM32_MAX_BYTES}-byte limit (${this.weightBytes} bytes already reserved)`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    try {
      this.memory.grow(pages);
    } catch (e) {
      throw new RangeError(
        `Cannot grow wasm memory to ${have + pages * PAGE} bytes for ${request} more bytes: ` +
          (e instanceof Error ? e.message : String(e)),
      );
    }
  }

  /** Internal long-lived scratch of at least `bytes`, reused per `name`. */
  scratch(name: string, bytes: number): number {
    const have = this.#scratch.get(name);
    if (have !== undefined && have.bytes >= bytes) return have.offset;
    const size = Math.max(bytes, (have?.bytes ?? 0) * 2, 4096);
    const { offset } = this.allocWeights(size);
    this.#scratch.set(name, { offset, bytes: size });
    return offset;
  }

  scratchHolds(name: string, offset: number, bytes: number): boolean {
    const have = this.#scratch.get(name);
    return have !== undefined && have.offset === offset && have.bytes >= bytes;
  }

  /**
   * Checks that a buffer lies inside the memory.
   *
   * @throws {RangeError} when [offset, offset + bytes) is outside the memory
   */
  checkRange(offset: number, bytes: number, name: string): void {
    if (Number.isInteger(offset) && offset >= 0 && offset + bytes <= this.#memoryBytes) return;
    // The memory may have grown behind our back (`memory.grow` is public): look again.
    this.#memoryBytes = this.memory.buffer.byteLength;
    if (!Number.isInteger(offset) || offset < 0 || offset + bytes > this.#memoryBytes) {
      throw new RangeError(
        `Buffer '${name}' at offset ${offset} (${bytes} bytes) is outside the ${this.#memoryBytes}-byte memory`,
      );
    }
  }

  /**
   * Notes, in the tape being recorded, that TypeScript wrote into the memory (an input copied
   * in, a result computed in place): the recorded calls alone would not repeat that step. Every
   * write of TypeScript into the memory during a graph run must call it, or a replayed step
   * could skip the write (`src/graph/replay.ts`).
   */
  noteHostWrite(): void {
    if (this.tape !== null) this.tape.hostWrites++;
  }

  /** f32 view of `length` floats at byte `offset` (fresh after any growth). */
  f32(offset: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, offset, length);
  }

  /** Byte view at `offset`. */
  u8(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, offset, length);
  }

  /**
   * Starts timing a step of `work` units (tokens) and applies the thread count the policy
   * chose for steps of that size.
   */
  beginStep(work = 1): void {
    this.#stepWork = work;
    this.#stepThreads = this.policy.next(work);
    this.#threads = Math.min(this.#stepThreads, this.maxThreads);
    this.#stepStart = performance.now();
  }

  /**
   * Ends the step begun by `beginStep`, feeding its time (less `idleMs` spent waiting on
   * something else) per unit of work to the policy.
   */
  endStep(idleMs = 0): void {
    const ms = performance.now() - this.#stepStart - idleMs;
    this.policy.record(this.#stepThreads, ms, this.#stepWork);
    this.#threads = this.policy.current();
  }

  /** Sum of `bytes` bytes as u32 words (the memory-read baseline); bytes % 64 == 0. */
  readSum(offset: number, bytes: number): number {
    this.checkRange(offset, bytes, "read");
    return this.#exports.read_sum_u32(offset, bytes) >>> 0;
  }

  /**
   * The dot-product roofline: `rounds` passes over `bytes` bytes (keep them in L1), 192
   * i8 products per 32 bytes and round with relaxed SIMD, 96 without, with nothing else
   * to do. Returns the first u16 lane of the sums (a checksum); bytes % 32 == 0.
   */
  dotPeak(offset: number, bytes: number, rounds: number): number {
    this.checkRange(offset, bytes, "read");
    return this.#exports.dot_peak_i8(offset, bytes, rounds) >>> 0;
  }

  /** W (n, k) Q4_0 @ x (m, k) f32 -> y (m, n), quantizing x into internal scratch first. */
  matmulQ4_0(
    w: number,
    x: number,
    y: number,
    m: number,
    n: number,
    k: number,
    layout: Q4Layout = "ggml",
  ): void {
    if (!isDim(m) || !isDim(k)) throwBadDim("matmulQ4_0", { m, k });
    checkQ4k("matmulQ4_0", k);
    const xq = this.scratch("q8", m * this.q8RowBytes(k));
    this.quantizeQ8_0(x, xq, m, k);
    this.matmulQ4_0Q8_0(w, xq, y, m, n, k, layout);
  }

  /**
   * Rewrites a Q4_0 weight W (n, k) from GGML rows to the `"rows8"` layout in place, once,
   * after it was written; pass `"rows8"` to the matmuls from then on.
   *
   * @throws {RangeError} when k is not a multiple of 32 or W is outside the memory
   */
  interleaveQ4_0Rows8(w: number, n: number, k: number): void {
    if (!isDim(n) || !isDim(k)) throwBadDim("interleaveQ4_0Rows8", { n, k });
    checkQ4k("interleaveQ4_0Rows8", k);
    const rowBytes = (k / QK) * Q4_0_BLOCK_BYTES;
    this.checkRange(w, n * rowBytes, "w");
    const tmp = this.scratch("rows8", 8 * rowBytes);
    (this.#exports.interleave_q4_0_rows8 as (...a: number[]) => void)(w, tmp, n, k);
  }

  /**
   * Row `r` of W (n, k) Q4_0 in the `"rows8"` layout (see
   * {@linkcode Kernels.interleaveQ4_0Rows8}), copied out as its k / 32 blocks in GGML order:
   * what the row held before the interleave.
   *
   * @throws {RangeError} when k is not a multiple of 32, r is not a row of W, or W is outside
   * the memory
   */
  q4_0Rows8Row(w: number, n: number, k: number, r: number): Uint8Array {
    if (!isDim(n) || !isDim(k)) throwBadDim("q4_0Rows8Row", { n, k });
    checkQ4k("q4_0Rows8Row", k);
    if (!Number.isInteger(r) || r < 0 || r >= n) {
      throw new RangeError(`q4_0Rows8Row: row ${r} is not one of W's ${n} rows`);
    }
    const rowBytes = (k / QK) * Q4_0_BLOCK_BYTES;
    this.checkRange(w, n * rowBytes, "w");
    const out = this.scratch("rows8 row", rowBytes);
    (this.#exports.q4_0_rows8_row as (...a: number[]) => void)(w, out, n, k, r);
    return this.u8(out, rowBytes).slice();
  }

  /** Stops the workers; the memory stays usable from this thread. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#threads = 1;
    this.#pool?.close();
    this.#pool = null;
  }

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function moduleUrl(variant: KernelVariant, shared: boolean): URL {
  return new URL(`./wasm/kernels_${variant}${shared ? "_mt" : ""}.wasm`, import.meta.url);
}

async function compile(variant: KernelVariant, shared: boolean): Promise<WebAssembly.Module> {
  const url = moduleUrl(variant, shared);
  const bytes = url.protocol === "file:"
    ? await Deno.readFile(url)
    : new Uint8Array(await (await fetch(url)).arrayBuffer());
  return await WebAssembly.compile(bytes);
}

function threadsAvailable(): boolean {
  return typeof SharedArrayBuffer === "function" && typeof Worker === "function" &&
    typeof Atomics === "object";
}

/**
 * Functional self-test of a module: a Q4_0 x Q8_0 dot product with a known exact answer.
 * Validation alone is not enough: some engines accept relaxed SIMD and compute it wrongly.
 */
export async function selfTest(module: WebAssembly.Module): Promise<boolean> {
  const memory = new WebAssembly.Memory({ initial: 48, maximum: 65536 });
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const x = instance.exports as unknown as Record<string, Fn>;
  const k = 64;
  const base = 65536 * 32;
  const bytes = new Uint8Array(memory.buffer);
  const xf = new Float32Array(memory.buffer, base, k);
  let expected = 0;
  for (let b = 0; b < k / QK; b++) {
    const blk = base + 1024 + b * Q4_0_BLOCK_BYTES;
    bytes[blk] = 0x00;
    bytes[blk + 1] = 0x3c;
    for (let j = 0; j < 16; j++) {
      const lo = (j * 7 + b) & 15;
      const hi = (j * 11 + 3 * b + 5) & 15;
      bytes[blk + 2 + j] = lo | (hi << 4);
      const a0 = j === 0 ? 127 : ((j * 37 + b * 13) % 255) - 127;
      const a1 = ((j * 53 + b * 29 + 7) % 255) - 127;
      xf[b * QK + j] = a0;
      xf[b * QK + j + 16] = a1;
      expected += (lo - 8) * a0 + (hi - 8) * a1;
    }
  }
  const xq = base + 2048;
  const y = base + 8192;
  x.quantize_q8_0!(base, xq, 1, k);
  x.matmul_q4_0_q8_0!(base + 1024, xq, y, 1, 1, k, 0, 1, 0);
  return new Float32Array(memory.buffer, y, 1)[0] === expected;
}

/**
 * Loads the kernels: picks the SIMD build (relaxed only after a passing functional
 * self-test), creates the memory (shared when threads are available) and starts the
 * worker pool once.
 *
 * @param options thread count, forced variant, arena size
 * @returns the kernels; call `close()` when done
 * @throws {Error} when a forced `"relaxed"` variant fails its self-test
 * @example
 * ```ts
 * import { loadKernels } from "./mod.ts";
 * const kernels = await loadKernels({ threads: 1 });
 * const x = kernels.alloc(4 * 4);
 * kernels.f32(x, 4).set([1, 2, 3, 4]);
 * kernels.softmax(x, x, 1, 4);
 * kernels.close();
 * ```
 */
export async function loadKernels(options: LoadKernelsOptions = {}): Promise<Kernels> {
  const wanted = options.threads ?? globalThis.navigator?.hardwareConcurrency ?? 1;
  if (!isPositiveInteger(wanted)) {
    throw new RangeError(`Option 'threads' must be a positive integer: received ${wanted}`);
  }
  const arenaBytes = options.arenaBytes ?? DEFAULT_ARENA_BYTES;
  if (!Number.isInteger(arenaBytes) || arenaBytes < 0 || arenaBytes > WASM32_MAX_BYTES / 2) {
    throw new RangeError(`Option 'arenaBytes' is out of range: received ${arenaBytes}`);
  }
  const runArenaBytes = options.runArenaBytes ?? RUN_ARENA_BYTES;
  if (
    !Number.isInteger(runArenaBytes) || runArenaBytes < 0 || runArenaBytes > WASM32_MAX_BYTES / 2
  ) {
    throw new RangeError(`Option 'runArenaBytes' is out of range: received ${runArenaBytes}`);
  }
  // Shared even for one thread: views of a shared memory survive its growth (the run arena).
  const shared = typeof SharedArrayBuffer === "function";
  const threads = threadsAvailable() ? wanted : 1;
  const variant = await chooseVariant(options.variant ?? "auto");
  const module = await compile(variant, shared);

  const probe = await WebAssembly.instantiate(module, {
    env: { memory: new WebAssembly.Memory({ initial: 64, maximum: 65536, shared }) },
  }).catch(() => null);
  const heapBase = probe === null
    ? PAGE * 64
    : (probe.exports.__heap_base as WebAssembly.Global).value as number;
  const stacksBase = Math.ceil(heapBase / PAGE) * PAGE;
  const arenaBase = stacksBase + (threads - 1) * WORKER_STACK_BYTES;
  const runBytes = shared ? Math.ceil(runArenaBytes / 64) * 64 : 0;
  const initialPages = Math.ceil((arenaBase + arenaBytes + runBytes) / PAGE) + 1;
  const memory = new WebAssembly.Memory({ initial: initialPages, maximum: 65536, shared });
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const exports = instance.exports as unknown as KernelExports;

  let pool: ThreadPool | null = null;
  if (threads > 1) {
    const stackTops = Array.from(
      { length: threads - 1 },
      (_, i) => stacksBase + (i + 1) * WORKER_STACK_BYTES,
    );
    // Workers that cannot start (no permission, no worker support) leave the main thread alone.
    pool = await ThreadPool.start(module, memory, exports, stackTops).catch(() => null);
  }
  return new Kernels({ memory, exports, variant, pool, arenaBase, arenaBytes, runBytes });
}

let relaxedWorks: Promise<boolean> | undefined;

async function chooseVariant(option: "auto" | KernelVariant): Promise<KernelVariant> {
  if (option === "simd128") return "simd128";
  relaxedWorks ??= compile("relaxed", false).then(selfTest).catch(() => false);
  const ok = await relaxedWorks;
  if (option === "relaxed" && !ok) {
    throw new Error("Relaxed SIMD kernels failed their functional self-test on this engine");
  }
  return ok ? "relaxed" : "simd128";
}
