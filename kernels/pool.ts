/** Web Workers sharing one WebAssembly.Memory: the main thread and the workers split a job. */

import {
  Control,
  CTL_ARGS,
  CTL_BYTES,
  CTL_CHUNK_SIZE,
  CTL_CHUNKS,
  CTL_CLAIM,
  CTL_DONE,
  CTL_FLOAT,
  CTL_GENERATION,
  CTL_OP,
  CTL_THREADS,
  type KernelExports,
  OP_STOP,
  runChunks,
} from "./_job.ts";

/** Spins before a blocking Atomics.wait: short, because a busy core turns spinning into loss. */
const SPIN_MAIN = 2_000;
/** A worker that holds a chunk this long without finishing it has died (a trap, a kill). */
const STALL_MS = 60_000;

export interface WorkerStart {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  index: number;
  stackTop: number;
}

/** Main thread + `workers.length` workers; `run` blocks until every share is done. */
export class ThreadPool {
  #workers: Worker[];
  #control: Control;
  #exports: KernelExports;
  #gen = 0;

  private constructor(workers: Worker[], control: SharedArrayBuffer, exports: KernelExports) {
    this.#workers = workers;
    this.#control = new Control(control);
    this.#exports = exports;
  }

  /** Starts `count` workers, each instantiating `module` on `memory` with its own stack. */
  static async start(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    exports: KernelExports,
    stackTops: number[],
  ): Promise<ThreadPool> {
    const control = new SharedArrayBuffer(CTL_BYTES);
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    try {
      for (const [i, stackTop] of stackTops.entries()) {
        const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
        workers.push(worker);
        ready.push(
          new Promise<void>((resolve, reject) => {
            worker.onmessage = () => resolve();
            worker.onerror = (e) => {
              e.preventDefault();
              reject(new Error(`Kernel worker ${i + 1} failed to start: ${e.message}`));
            };
          }),
        );
        const start: WorkerStart = { module, memory, control, index: i + 1, stackTop };
        worker.postMessage(start);
      }
      await Promise.all(ready);
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    }
    for (const w of workers) {
      w.onmessage = null;
      w.onerror = null;
    }
    return new ThreadPool(workers, control, exports);
  }

  get size(): number {
    return this.#workers.length + 1;
  }

  /**
   * Runs job `op` as `chunks` chunks of `chunkSize` rows (or heads) that the main thread
   * and the workers claim one by one; returns when all are done.
   */
  run(
    op: number,
    threads: number,
    chunks: number,
    chunkSize: number,
    args: readonly number[],
    scale = 0,
  ): void {
    const c = this.#control;
    const ctl = c.i32;
    const gen = this.#gen = (this.#gen + 1) & 0x7fffffff;
    ctl[CTL_OP] = op;
    ctl[CTL_CHUNKS] = chunks;
    ctl[CTL_CHUNK_SIZE] = chunkSize;
    ctl[CTL_THREADS] = threads;
    for (let i = 0; i < args.length; i++) ctl[CTL_ARGS + i] = args[i]! | 0;
    c.f32[CTL_FLOAT] = scale;
    Atomics.store(ctl, CTL_DONE, 0);
    Atomics.store(c.claim, CTL_CLAIM, BigInt(gen) << 32n);
    Atomics.store(ctl, CTL_GENERATION, gen);
    Atomics.notify(ctl, CTL_GENERATION);
    runChunks(this.#exports, c, gen, 0);
    let spins = 0;
    let last = -1;
    let since = 0;
    for (;;) {
      const done = Atomics.load(ctl, CTL_DONE);
      if (done >= chunks) break;
      if (spins++ < SPIN_MAIN) continue;
      if (done !== last) {
        last = done;
        since = performance.now();
      } else if (performance.now() - since > STALL_MS) {
        throw new Error(
          `Kernel workers made no progress for ${STALL_MS} ms (${done} of ${chunks} chunks done)`,
        );
      }
      Atomics.wait(ctl, CTL_DONE, done, 1000);
    }
  }

  /** Stops and terminates every worker. */
  close(): void {
    const ctl = this.#control.i32;
    ctl[CTL_OP] = OP_STOP;
    this.#gen = (this.#gen + 1) & 0x7fffffff;
    Atomics.store(ctl, CTL_GENERATION, this.#gen);
    Atomics.notify(ctl, CTL_GENERATION);
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }
}
