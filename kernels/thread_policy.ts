/** Chooses how many threads the next step uses from the step times it is fed. */

export interface ThreadPolicyOptions {
  /** Every `probeEvery` steps, one step runs with a neighbouring thread count. Default 16. */
  probeEvery?: number;
  /** A thread count must be this much faster (fraction) to replace the current one. Default 0.1. */
  margin?: number;
  /** Most recent steps kept per thread count. Default 9. */
  window?: number;
}

/** Steps a thread count must have been timed for before it is compared. */
const MIN_SAMPLES = 3;
/**
 * Steps of one probe: the first only wakes the threads the current count left idle, and is
 * not timed (see `record`).
 */
const PROBE_STEPS = 2;

/**
 * Adaptive thread count: starts at `maxThreads`, probes the neighbouring counts now and
 * then, and moves to whichever count has the lowest median time per unit of work over its
 * recent steps. A median, not a mean: with every core busy, a step now and then waits
 * milliseconds for a descheduled worker, and one such step must not outweigh the typical
 * ones (a moving average did: two threads, 4.5 ms a typical step against 5.9 for one, lost
 * a third of the steps to one thread). Feed it comparable steps (decode steps), with `work`
 * (e.g. tokens) when they differ.
 *
 * A step whose count differs from the step before is not timed: it pays for waking workers
 * that slept through the steps before (on a VM, a halted vCPU), which the steps after it do
 * not. Timed, two-thread probes after one-thread steps took 8 ms where two-thread steps
 * take 4.5, and kept the policy at one thread for hundreds of steps.
 */
export class ThreadPolicy {
  #max: number;
  #current: number;
  #samples = new Map<number, number[]>();
  #step = 0;
  #probes = 0;
  #probe = 0;
  #last = 0;
  #probeEvery: number;
  #margin: number;
  #window: number;

  /**
   * Creates a policy that starts at `maxThreads`.
   *
   * @param maxThreads the most threads the pool has (main thread included)
   * @param options probe period (at least 4 steps: a probe takes 2), margin and window
   * @throws {RangeError} when maxThreads is not a positive integer
   */
  constructor(maxThreads: number, options: ThreadPolicyOptions = {}) {
    if (!Number.isInteger(maxThreads) || maxThreads < 1) {
      throw new RangeError(`Thread count must be a positive integer: received ${maxThreads}`);
    }
    this.#max = maxThreads;
    this.#current = maxThreads;
    this.#probeEvery = Math.max(PROBE_STEPS + 2, options.probeEvery ?? 16);
    this.#margin = options.margin ?? 0.1;
    this.#window = Math.max(MIN_SAMPLES, options.window ?? 9);
  }

  /** Thread count the policy currently prefers. */
  get current(): number {
    return this.#current;
  }

  /** Median time per unit of work of the recent steps with `threads`, if any. */
  median(threads: number): number | undefined {
    const samples = this.#samples.get(threads);
    if (!samples || samples.length === 0) return undefined;
    const sorted = samples.toSorted((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  }

  /** Thread count to use for the next step (usually `current`, sometimes a probe). */
  next(): number {
    if (this.#max === 1) return 1;
    this.#step++;
    const phase = this.#step % this.#probeEvery;
    if (phase === 0) {
      this.#probes++;
      const down = this.#current - 1;
      const up = this.#current + 1;
      this.#probe = down < 1 ? up : up > this.#max ? down : this.#probes % 2 === 1 ? down : up;
    }
    return phase < PROBE_STEPS && this.#probes > 0 ? this.#probe : this.#current;
  }

  /** Records that a step with `threads` threads took `ms` for `work` units of work. */
  record(threads: number, ms: number, work = 1): void {
    const woke = threads !== this.#last;
    this.#last = threads;
    if (woke || !(ms >= 0) || !(work > 0)) return;
    let samples = this.#samples.get(threads);
    if (!samples) this.#samples.set(threads, samples = []);
    samples.push(ms / work);
    if (samples.length > this.#window) samples.shift();
    for (const t of [this.#current - 1, this.#current + 1]) {
      const other = this.#typical(t);
      const mine = this.#typical(this.#current);
      if (other !== undefined && mine !== undefined && other * (1 + this.#margin) < mine) {
        this.#current = t;
      }
    }
  }

  /** The median of `threads` once it has been timed often enough to compare. */
  #typical(threads: number): number | undefined {
    const samples = this.#samples.get(threads);
    return samples && samples.length >= MIN_SAMPLES ? this.median(threads) : undefined;
  }
}
