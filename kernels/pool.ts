/** Web Workers sharing one WebAssembly.Memory: the main thread and the workers split a job. */

import {
  Control,
  CTL_BYTES,
  CTL_CHUNKS,
  CTL_CLAIM,
  CTL_DONE,
  CTL_GENERATION,
  CTL_MAIN_WAITING,
  CTL_SLEEPERS,
  CTL_STOP,
  CTL_THREADS,
  type KernelExports,
  MAX_CHUNKS,
  runChunks,
  type Task,
} from "./_job.ts";

/**
 * How long the main thread spins for the workers' last chunks before it sleeps (a job blocks
 * it either way; spinning only spends CPU time). On a 2-vCPU Xeon VM a decode step's jobs often
 * waited 0.3-1 ms for a worker's last chunk, and waking from a sleep then cost more: a 110M
 * decode at two threads ran 1.06-1.12x faster spinning 1 ms than 0.05 ms (in-process A/B,
 * median of 10-12 rounds), and 1.10x faster than spinning 0.3 ms.
 */
const SPIN_MAIN_MS = 1;
/** A worker that holds a chunk this long without finishing it has died (a trap, a kill). */
const STALL_MS = 60_000;

export interface WorkerStart {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  index: number;
  stackTop: number;
}

/** Main thread + `workers.length` workers; `run` blocks until every chunk is done. */
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
   * Runs `tasks` as one job on `threads` threads (main thread included): their chunks are
   * claimed one by one by whichever thread is free; returns when all are done.
   *
   * @throws {RangeError} when the job has more than 65535 chunks
   */
  run(tasks: readonly Task[], threads: number): void {
    const c = this.#control;
    const ctl = c.i32;
    const chunks = c.writeTasks(tasks);
    if (chunks > MAX_CHUNKS) {
      throw new RangeError(`A kernel job has ${chunks} chunks, more than ${MAX_CHUNKS}`);
    }
    const gen = this.#gen = (this.#gen + 1) & 0x7fffffff;
    ctl[CTL_CHUNKS] = chunks;
    ctl[CTL_THREADS] = threads;
    Atomics.store(ctl, CTL_DONE, 0);
    Atomics.store(ctl, CTL_CLAIM, (gen & 0xffff) << 16);
    Atomics.store(ctl, CTL_GENERATION, gen);
    if (Atomics.load(ctl, CTL_SLEEPERS) !== 0) Atomics.notify(ctl, CTL_GENERATION);
    runChunks(this.#exports, c, gen, 0);
    this.#awaitChunks(chunks);
  }

  /** Spins briefly for the chunks the workers still hold, then sleeps until they notify. */
  #awaitChunks(chunks: number): void {
    const ctl = this.#control.i32;
    const spinEnd = performance.now() + SPIN_MAIN_MS;
    for (let i = 1; Atomics.load(ctl, CTL_DONE) < chunks; i++) {
      if ((i & 63) === 0 && performance.now() > spinEnd) {
        this.#sleepUntilDone(chunks);
        return;
      }
      Atomics.pause();
    }
  }

  #sleepUntilDone(chunks: number): void {
    const ctl = this.#control.i32;
    Atomics.store(ctl, CTL_MAIN_WAITING, 1);
    try {
      let last = -1;
      let since = 0;
      for (;;) {
        const done = Atomics.load(ctl, CTL_DONE);
        if (done >= chunks) return;
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
    } finally {
      Atomics.store(ctl, CTL_MAIN_WAITING, 0);
    }
  }

  /** Stops and terminates every worker. */
  close(): void {
    const ctl = this.#control.i32;
    Atomics.store(ctl, CTL_STOP, 1);
    this.#gen = (this.#gen + 1) & 0x7fffffff;
    Atomics.store(ctl, CTL_GENERATION, this.#gen);
    Atomics.notify(ctl, CTL_GENERATION);
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }
}
