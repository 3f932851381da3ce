/// <reference lib="deno.worker" />
/** A kernel worker: instantiates the module on the shared memory and runs its share of each job. */

import {
  Control,
  CTL_DONE,
  CTL_GENERATION,
  CTL_OP,
  type KernelExports,
  OP_STOP,
  runChunks,
} from "./_job.ts";
import type { WorkerStart } from "./pool.ts";

const SPIN_WORKER = 2_000;

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
    let spins = 0;
    let gen = Atomics.load(ctl, CTL_GENERATION);
    while (gen === seen) {
      if (spins++ > SPIN_WORKER) Atomics.wait(ctl, CTL_GENERATION, seen);
      gen = Atomics.load(ctl, CTL_GENERATION);
    }
    seen = gen;
    if (ctl[CTL_OP] === OP_STOP) break;
    runChunks(exports, c, gen, index);
    Atomics.notify(ctl, CTL_DONE);
  }
  self.close();
}
