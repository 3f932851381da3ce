/** Chooses how many threads the next step uses from the step times it is fed. */

export interface ThreadPolicyOptions {
  /**
   * Steps from one probe of a neighbouring thread count to the next, at first and after the
   * count changes or slows down. Default 16.
   */
  probeEvery?: number;
  /** The most steps between probes, reached by doubling while probes lose. Default 512. */
  maxProbeEvery?: number;
  /** A thread count must be this much faster (fraction) to replace the current one. Default 0.1. */
  margin?: number;
  /** Most recent steps kept per thread count. Default 9. */
  window?: number;
}

/** Steps a thread count must have been timed for before it is compared. */
const MIN_SAMPLES = 3;
/**
 * Steps of a probe of more threads: the first only wakes the threads the current count left
 * idle, and is not timed (see `record`). A probe of fewer threads wakes none: one step, timed.
 */
const PROBE_UP_STEPS = 2;
const PROBE_DOWN_STEPS = 1;

/** One size of step's choice: its preferred count, recent times and probes. */
interface Choice {
  current: number;
  samples: Map<number, number[]>;
  step: number;
  probes: number;
  /** The count the probe in progress runs, and the step after its last. */
  probe: number;
  probeEnd: number;
  /** The step the next probe starts at, and the steps from one probe's start to the next. */
  nextProbe: number;
  gap: number;
  /** The current count when the last probe began, and its typical time when it ended. */
  before: number;
  settled: number | undefined;
}

/** Steps of `c`'s probe: one more to wake the threads when it runs more than `c.before`. */
function probeSteps(c: Choice): number {
  return c.probe > c.before ? PROBE_UP_STEPS : PROBE_DOWN_STEPS;
}

/**
 * Adaptive thread count: starts at `maxThreads`, probes the neighbouring counts now and
 * then, and moves to whichever count has the lowest median time per unit of work over its
 * recent steps. A median, not a mean: with every core busy, a step now and then waits
 * milliseconds for a descheduled worker, and one such step must not outweigh the typical
 * ones (a moving average did: two threads, 4.5 ms a typical step against 5.9 for one, lost
 * a third of the steps to one thread).
 *
 * Steps are compared only with steps of about the same work (tokens), each size choosing its
 * own count: per token, a 128-token prompt step at two threads (1.5 ms) is faster than a
 * decode step at one (5.9 ms), and one window of both sent decode, and then the next prompt,
 * to one thread.
 *
 * A step with more threads than the step before is not timed: it pays for waking workers
 * that slept through the steps before (on a VM, a halted vCPU), which the steps after it do
 * not. Timed, two-thread probes after one-thread steps took 8 ms where two-thread steps
 * take 4.5, and kept the policy at one thread for hundreds of steps. A step with fewer
 * threads wakes none, so a probe of fewer threads is one step, timed.
 *
 * Probes cost: at two threads, two one-thread steps in every 16 (and the wake-up after
 * them) took 10% off a 110M decode; eight sequences' steps at one thread take 1.6 times as
 * long as at two, and one-step probes ran them 1.02-1.13x faster than two-step ones. A probe
 * that loses doubles the wait for the next, up to `maxProbeEvery` steps; a probe that wins,
 * or a current count whose median grows by the margin over what it was after the last probe
 * (a neighbour took a core), brings probes back to every `probeEvery` steps. A neighbour is
 * judged by its last three times, so that times from before the machine changed do not hold
 * a decision for long.
 */
export class ThreadPolicy {
  #max: number;
  #choices = new Map<number, Choice>();
  #last = 0;
  #probeEvery: number;
  #maxProbeEvery: number;
  #margin: number;
  #window: number;

  /**
   * Creates a policy that starts at `maxThreads`.
   *
   * @param maxThreads the most threads the pool has (main thread included)
   * @param options probe period (at least 4 steps: a probe takes up to 2), margin and window
   * @throws {RangeError} when maxThreads is not a positive integer
   */
  constructor(maxThreads: number, options: ThreadPolicyOptions = {}) {
    if (!Number.isInteger(maxThreads) || maxThreads < 1) {
      throw new RangeError(`Thread count must be a positive integer: received ${maxThreads}`);
    }
    this.#max = maxThreads;
    this.#probeEvery = Math.max(PROBE_UP_STEPS + 2, options.probeEvery ?? 16);
    this.#maxProbeEvery = Math.max(this.#probeEvery, options.maxProbeEvery ?? 512);
    this.#margin = options.margin ?? 0.1;
    this.#window = Math.max(MIN_SAMPLES, options.window ?? 9);
  }

  /** Thread count the policy currently prefers for steps of `work` units (one token). */
  current(work = 1): number {
    return this.#choice(work).current;
  }

  /** Median time per unit of work of the recent steps of `work` units with `threads`. */
  median(threads: number, work = 1): number | undefined {
    const samples = this.#choice(work).samples.get(threads);
    return samples && samples.length > 0 ? medianOf(samples) : undefined;
  }

  /** Thread count for the next step, of `work` units (usually `current`, sometimes a probe). */
  next(work = 1): number {
    if (this.#max === 1) return 1;
    const c = this.#choice(work);
    c.step++;
    if (c.step === c.nextProbe) this.#startProbe(c);
    if (c.step < c.probeEnd) return c.probe;
    if (c.step === c.probeEnd) this.#endProbe(c);
    return c.current;
  }

  /** Records that a step with `threads` threads took `ms` for `work` units of work. */
  record(threads: number, ms: number, work = 1): void {
    const woke = threads > this.#last;
    this.#last = threads;
    if (woke || !(ms >= 0) || !(work > 0)) return;
    const c = this.#choice(work);
    let samples = c.samples.get(threads);
    if (!samples) c.samples.set(threads, samples = []);
    samples.push(ms / work);
    if (samples.length > this.#window) samples.shift();
    const was = c.current;
    const mine = this.#typical(c, was);
    if (mine === undefined) return;
    // A neighbour replaces the count when it beats it by the margin (the faster of two).
    let bar = mine;
    for (const t of [was - 1, was + 1]) {
      const other = this.#typical(c, t, MIN_SAMPLES);
      if (other !== undefined && other * (1 + this.#margin) < bar) {
        c.current = t;
        bar = other;
      }
    }
    if (c.step < c.probeEnd) return;
    const slower = c.settled !== undefined && mine > c.settled * (1 + this.#margin);
    if (c.current !== was || slower) {
      c.gap = this.#probeEvery;
      c.nextProbe = Math.min(c.nextProbe, c.step + 1);
      c.settled = undefined;
    }
  }

  #startProbe(c: Choice): void {
    c.probes++;
    const down = c.current - 1;
    const up = c.current + 1;
    c.probe = down < 1 ? up : up > this.#max ? down : c.probes % 2 === 1 ? down : up;
    c.before = c.current;
    c.probeEnd = c.step + probeSteps(c);
  }

  /** A probe that could be compared and left the count as it was doubles the wait. */
  #endProbe(c: Choice): void {
    const lost = c.current === c.before && this.#typical(c, c.probe) !== undefined;
    c.gap = lost ? Math.min(2 * c.gap, this.#maxProbeEvery) : this.#probeEvery;
    c.nextProbe = c.probeEnd - probeSteps(c) + c.gap;
    c.settled = this.#typical(c, c.current);
  }

  /** The choice of steps of about `work` units: 1, 2, 3-4, 5-8, ... (up to 4096 and more). */
  #choice(work: number): Choice {
    const size = work <= 1 ? 0 : Math.min(32 - Math.clz32(Math.ceil(work) - 1), 12);
    let c = this.#choices.get(size);
    if (!c) {
      c = {
        current: this.#max,
        samples: new Map(),
        step: 0,
        probes: 0,
        probe: 0,
        probeEnd: 0,
        nextProbe: this.#probeEvery,
        gap: this.#probeEvery,
        before: this.#max,
        settled: undefined,
      };
      this.#choices.set(size, c);
    }
    return c;
  }

  /**
   * The median of `threads` (of its `last` samples only, if given) once it has been timed
   * often enough to compare.
   */
  #typical(c: Choice, threads: number, last?: number): number | undefined {
    const samples = c.samples.get(threads);
    if (!samples || samples.length < MIN_SAMPLES) return undefined;
    return medianOf(last === undefined ? samples : samples.slice(-last));
  }
}

function medianOf(samples: readonly number[]): number {
  const sorted = samples.toSorted((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
