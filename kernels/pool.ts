/** Web Workers sharing one WebAssembly.Memory: the main thread and the workers split a job. */

import {
  CTL_ARGS,
  CTL_BYTES,
  CTL_DONE,
  CTL_FLOAT,
  CTL_GENERATION,
  CTL_OP,
  CTL_PARTS,
  type KernelExports,
  OP_STOP,
  runShare,
} from "./_job.ts";

/** Spins before a blocking Atomics.wait: short, because a busy core turns spinning into loss. */
const SPIN_MAIN = 20_000;

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
  #ctl: Int32Array;
  #f32: Float32Array;
  #exports: KernelExports;

  private constructor(workers: Worker[], control: SharedArrayBuffer, exports: KernelExports) {
    this.#workers = workers;
    this.#ctl = new Int32Array(control);
    this.#f32 = new Float32Array(control, CTL_FLOAT * 4, 1);
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

  /** Runs job `op` split in `parts` shares (2 <= parts <= size); share 0 runs here. */
  run(op: number, parts: number, args: readonly number[], scale = 0): void {
    const ctl = this.#ctl;
    ctl[CTL_OP] = op;
    ctl[CTL_PARTS] = parts;
    for (let i = 0; i < args.length; i++) ctl[CTL_ARGS + i] = args[i]! | 0;
    this.#f32[0] = scale;
    Atomics.store(ctl, CTL_DONE, 0);
    Atomics.add(ctl, CTL_GENERATION, 1);
    Atomics.notify(ctl, CTL_GENERATION);
    runShare(this.#exports, ctl, 0);
    const need = this.#workers.length;
    let spins = 0;
    for (;;) {
      const done = Atomics.load(ctl, CTL_DONE);
      if (done >= need) break;
      if (spins++ < SPIN_MAIN) continue;
      Atomics.wait(ctl, CTL_DONE, done, 1000);
    }
  }

  /** Stops and terminates every worker. */
  close(): void {
    const ctl = this.#ctl;
    ctl[CTL_OP] = OP_STOP;
    Atomics.add(ctl, CTL_GENERATION, 1);
    Atomics.notify(ctl, CTL_GENERATION);
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }
}
