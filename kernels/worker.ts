/// <reference lib="deno.worker" />
/** A kernel worker: instantiates the module on the shared memory and runs its share of each job. */

import {
  Control,
  CTL_GENERATION,
  CTL_SLEEPERS,
  CTL_STOP,
  type KernelExports,
  runChunks,
} from "./_job.ts";
import type { WorkerStart } from "./pool.ts";

/**
 * How long an idle worker spins for the next job before it sleeps: longer than the gaps
 * between the kernel calls of a decode step, so it is awake when the next one comes (a
 * sleeping worker wakes tens of microseconds late, after the main thread took most chunks).
 */
const SPIN_WORKER_MS = 2;

self.onmessage = serve;

async function serve(e: MessageEvent<WorkerStart>): Promise<void> {
  self.onmessage = null;
  const { module, memory, control, index, stackTop } = e.data;
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  (instance.exports.__stack_pointer as WebAssembly.Global).value = stackTop;
  const exports = instance.exports as unknown as KernelExports;
  const c = new Control(control);
  const ctl = c.i32;
  let seen = Atomics.load(ctl, CTL_GENERATION);
  self.postMessage("ready");
  for (;;) {
    seen = nextGeneration(ctl, seen);
    if (Atomics.load(ctl, CTL_STOP) !== 0) break;
    runChunks(exports, c, seen, index);
  }
  self.close();
}

/** Waits for a generation other than `seen`: spins up to SPIN_WORKER_MS, then sleeps. */
function nextGeneration(ctl: Int32Array, seen: number): number {
  const spinEnd = performance.now() + SPIN_WORKER_MS;
  let gen = Atomics.load(ctl, CTL_GENERATION);
  for (let i = 1; gen === seen; i++) {
    if ((i & 255) === 0 && performance.now() > spinEnd) {
      Atomics.add(ctl, CTL_SLEEPERS, 1);
      Atomics.wait(ctl, CTL_GENERATION, seen);
      Atomics.sub(ctl, CTL_SLEEPERS, 1);
    } else {
      Atomics.pause();
    }
    gen = Atomics.load(ctl, CTL_GENERATION);
  }
  return gen;
}
