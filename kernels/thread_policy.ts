/** Chooses how many threads the next step uses from the step times it is fed. */

export interface ThreadPolicyOptions {
  /** Every `probeEvery` steps, one step runs with a neighbouring thread count. Default 16. */
  probeEvery?: number;
  /** A thread count must be this much faster (fraction) to replace the current one. Default 0.1. */
  margin?: number;
  /** Weight of a new sample in the moving average. Default 0.3. */
  alpha?: number;
}

/**
 * Adaptive thread count: starts at `maxThreads`, probes the neighbouring counts now and
 * then, and moves to whichever count has the lowest moving-average time per unit of work.
 * Feed it comparable steps (decode steps), with `work` (e.g. tokens) when they differ.
 */
export class ThreadPolicy {
  #max: number;
  #current: number;
  #avg = new Map<number, number>();
  #step = 0;
  #probes = 0;
  #probeEvery: number;
  #margin: number;
  #alpha: number;

  /**
   * Creates a policy that starts at `maxThreads`.
   *
   * @param maxThreads the most threads the pool has (main thread included)
   * @param options probe period, margin and averaging weight
   * @throws {RangeError} when maxThreads is not a positive integer
   */
  constructor(maxThreads: number, options: ThreadPolicyOptions = {}) {
    if (!Number.isInteger(maxThreads) || maxThreads < 1) {
      throw new RangeError(`Thread count must be a positive integer: received ${maxThreads}`);
    }
    this.#max = maxThreads;
    this.#current = maxThreads;
    this.#probeEvery = options.probeEvery ?? 16;
    this.#margin = options.margin ?? 0.1;
    this.#alpha = options.alpha ?? 0.3;
  }

  /** Thread count the policy currently prefers. */
  get current(): number {
    return this.#current;
  }

  /** Moving-average time per unit of work measured with `threads`, if any. */
  average(threads: number): number | undefined {
    return this.#avg.get(threads);
  }

  /** Thread count to use for the next step (usually `current`, sometimes a probe). */
  next(): number {
    if (this.#max === 1) return 1;
    this.#step++;
    if (this.#step % this.#probeEvery !== 0) return this.#current;
    this.#probes++;
    const down = this.#current - 1;
    const up = this.#current + 1;
    if (down < 1) return up;
    if (up > this.#max) return down;
    return this.#probes % 2 === 1 ? down : up;
  }

  /** Records that a step with `threads` threads took `ms` for `work` units of work. */
  record(threads: number, ms: number, work = 1): void {
    if (!(ms >= 0) || !(work > 0)) return;
    const rate = ms / work;
    const prev = this.#avg.get(threads);
    const avg = prev === undefined ? rate : prev + this.#alpha * (rate - prev);
    this.#avg.set(threads, avg);
    const cur = this.#avg.get(this.#current);
    if (threads !== this.#current && cur !== undefined && avg * (1 + this.#margin) < cur) {
      this.#current = threads;
    }
    for (const t of [this.#current - 1, this.#current + 1]) {
      const other = this.#avg.get(t);
      const mine = this.#avg.get(this.#current);
      if (other !== undefined && mine !== undefined && other * (1 + this.#margin) < mine) {
        this.#current = t;
      }
    }
  }
}
