/**
 * One-token runs of a graph replayed from a recording, so that decoding does not walk every
 * step's TypeScript again for work that does not move from one token to the next.
 *
 * Two runs are recorded step by step: the kernel calls each step made, the run-arena
 * allocations it got, where its inputs and outputs lay and which symbols it read. A step that
 * did the same in both, read and wrote only the arena (and constants), and made no write of
 * its own into the kernels' memory (`Kernels.noteHostWrite`) is replayed in later runs: its
 * allocations are taken again (each must land where it was recorded), its calls are made
 * again as recorded, and its outputs are the recorded views. Every other step (the cache
 * appends, attention, anything reading the position) runs as usual. Should any allocation,
 * or an output of a step that ran as usual, lie elsewhere than recorded, the rest of the run
 * runs as usual and the recording starts over.
 *
 * What this buys is the walk itself, not the kernels: at the 110M shape, a token's graph
 * runs 323 steps, and the TypeScript between kernel calls took about 1.5 ms of 5.6.
 */
import type { Tensor } from "../tensor/tensor.ts";
import { isStrided } from "../ops/common.ts";
import { isPaged } from "../tensor/paged.ts";
import type { Bindings } from "../tensor/dim.ts";
import type { KernelCall, Kernels, KernelTape, RunArena } from "../../kernels/mod.ts";

/** Recordings that may start over after a replay left its plan, per session. */
const MAX_RECORDINGS = 8;

/** Bindings that note which symbols are read. */
export class WatchedBindings extends Map<string, number> {
  readonly read: Set<string> = new Set();

  override get(name: string): number | undefined {
    this.read.add(name);
    return super.get(name);
  }

  override has(name: string): boolean {
    this.read.add(name);
    return super.has(name);
  }
}

/** What one step did in a recorded run. */
interface Take {
  /** Everything that must match between two runs for the step to be replayed; null: never. */
  readonly key: string | null;
  readonly calls: readonly KernelCall[];
  /** Run-arena allocations, (offset, bytes) pairs. */
  readonly allocs: readonly number[];
  /** Top of the kernels' activation arena when the step began (the calls' scratch lies above). */
  readonly mark: number;
  /** The step's outputs by value id, as the run kept them. */
  readonly outputs: ReadonlyMap<number, Tensor>;
  /** Those of them that lie in the run arena. */
  readonly held: ReadonlyMap<number, Tensor>;
  /** The symbols it read, with their values. */
  readonly symbols: ReadonlyMap<string, number>;
}

/** How `t` lies in `arena`, or null when it does not lie there. */
export function arenaLayout(t: Tensor, arena: RunArena): string | null {
  if (isPaged(t) || !(t.data instanceof Float32Array) || !arena.holds(t.data)) return null;
  const where = `${t.data.byteOffset}+${t.data.length}:${t.shape.join("x")}`;
  return isStrided(t) ? `${where}@${t.offset}/${t.strides.join(",")}` : where;
}

/** True when `a` and `b` lie over the same items of the memory in the same order. */
export function sameLayout(a: Tensor, b: Tensor): boolean {
  if (isPaged(a) || !(a.data instanceof Float32Array)) return false;
  const x = a.data;
  const y = b.data as Float32Array;
  if (x.buffer !== y.buffer && !(x.buffer instanceof SharedArrayBuffer)) return false;
  if (x.byteOffset !== y.byteOffset || x.length !== y.length) return false;
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  if (isStrided(a) !== isStrided(b)) return false;
  if (isStrided(a) && isStrided(b)) {
    return a.offset === b.offset && a.strides.every((s, i) => s === b.strides[i]);
  }
  return true;
}

/** One run being recorded. */
export class Recording {
  readonly bindings: WatchedBindings;
  /** Kernel threads of the run (its pool jobs carry them). */
  readonly threads: number;
  readonly #kernels: Kernels;
  readonly #arena: RunArena;
  /** Per node or fused step, what it did (alias and dims steps are not recorded). */
  readonly #takes: (Take | undefined)[] = [];
  #tape: KernelTape = { calls: [], allocs: [], hostWrites: 0 };
  #mark = 0;

  constructor(kernels: Kernels, arena: RunArena, bindings: Bindings) {
    this.#kernels = kernels;
    this.#arena = arena;
    this.threads = kernels.threads;
    this.bindings = new WatchedBindings(bindings);
  }

  /** Step `i` begins: its kernel calls go to a tape of its own. */
  begin(): void {
    this.#tape = { calls: [], allocs: [], hostWrites: 0 };
    this.#mark = this.#kernels.mark();
    this.bindings.read.clear();
    this.#kernels.tape = this.#tape;
  }

  /** Stops recording calls (also when a step threw). */
  stop(): void {
    this.#kernels.tape = null;
  }

  /**
   * Node or fused step `i` ended: `reads` are the ids it read (`read` gives them), `outs` what
   * it gave for its output ids `ids` (undefined where it gave none).
   */
  end(
    i: number,
    reads: readonly number[],
    read: (id: number) => Tensor,
    isConstant: (id: number) => boolean,
    ids: readonly number[],
    outs: readonly (Tensor | undefined)[],
  ): void {
    this.stop();
    const tape = this.#tape;
    const symbols = new Map<string, number>();
    for (const s of [...this.bindings.read].sort()) symbols.set(s, this.bindings.get(s)!);
    const layouts: (string | null)[] = [];
    for (const id of reads) layouts.push(isConstant(id) ? "c" : arenaLayout(read(id), this.#arena));
    layouts.push("->");
    const outputs = new Map<number, Tensor>();
    const held = new Map<number, Tensor>();
    ids.forEach((id, k) => {
      const t = outs[k];
      if (!t) return;
      const layout = arenaLayout(t, this.#arena);
      outputs.set(id, t);
      if (layout !== null) held.set(id, t);
      layouts.push(layout);
    });
    let key: string | null = null;
    if (tape.hostWrites === 0 && !layouts.includes(null) && outputs.size > 0) {
      const calls = tape.calls.map((c) => ("fn" in c ? [c.name, c.args] : [c.job, c.threads]));
      key = JSON.stringify([calls, tape.allocs, this.#mark, layouts, [...symbols]]);
    }
    this.#takes[i] = {
      key,
      calls: tape.calls,
      allocs: tape.allocs,
      mark: this.#mark,
      outputs,
      held,
      symbols,
    };
  }

  /** The steps' takes, in run order (undefined for steps not recorded). */
  get takes(): readonly (Take | undefined)[] {
    return this.#takes;
  }

  /** True when the arena never had to free space in this run (its offsets follow the sizes). */
  get settled(): boolean {
    return this.#arena.collections === 0;
  }
}

/**
 * Consecutive replayed steps, replayed as one: their allocations, their calls, then the
 * values the steps after them read.
 */
interface Segment {
  /** The step after its last. */
  readonly end: number;
  /** Run-arena allocations in order, (offset, bytes) pairs. */
  readonly allocs: readonly number[];
  /** Top of the activation arena when each of its steps began. */
  readonly mark: number;
  /** Its kernel calls, each bound to its arguments. */
  readonly calls: readonly (() => unknown)[];
  /** The outputs still live after it: their ids and the recorded views. */
  readonly ids: readonly number[];
  readonly tensors: readonly Tensor[];
  /** Values from before it that its steps were the last to read. */
  readonly drop: readonly number[];
}

/**
 * The steps two recordings agree on (same non-null key), as runs [start, end) of consecutive
 * such steps that began at the same top of the activation arena: each is replayed as one.
 */
export function replayedRuns(
  first: readonly ({ readonly key: string | null } | undefined)[],
  second: readonly ({ readonly key: string | null; readonly mark: number } | undefined)[],
): { replayed: boolean[]; runs: [number, number][] } {
  const replayed = second.map((b, i) => b?.key != null && first[i]?.key === b.key);
  const runs: [number, number][] = [];
  for (let i = 0; i < second.length;) {
    if (!replayed[i]) {
      i++;
      continue;
    }
    const mark = second[i]!.mark;
    let end = i;
    while (end < second.length && replayed[end] && second[end]!.mark === mark) end++;
    runs.push([i, end]);
    i = end;
  }
  return { replayed, runs };
}

/**
 * Takes a replayed run's allocations again and makes its calls; false (before any call) when
 * the activation arena's top or an allocation lies elsewhere than recorded.
 */
export function replayRun(
  kernels: Kernels,
  arena: RunArena,
  { mark, allocs, calls }: {
    readonly mark: number;
    readonly allocs: readonly number[];
    readonly calls: readonly (() => unknown)[];
  },
): boolean {
  if (kernels.mark() !== mark) return false;
  for (let j = 0; j < allocs.length; j += 2) {
    if (arena.alloc(allocs[j + 1]!) !== allocs[j]) return false;
  }
  for (const call of calls) call();
  return true;
}

/** A recorded kernel call, bound to make again. */
export function bound(c: KernelCall): () => unknown {
  if ("fn" in c) return c.fn.bind(null, ...c.args);
  return () => c.pool.run(c.job, c.threads);
}

/** Which steps replay, from two recordings of one thread count. */
class Plan {
  /** Per step: the segment that starts there, or null. */
  readonly starts: (Segment | null)[];
  /** Per step that runs as usual: the outputs it must leave where they were recorded. */
  readonly expected: (ReadonlyMap<number, Tensor> | null)[];
  /** The symbols the replayed steps read, with the values they must have. */
  readonly symbols: ReadonlyMap<string, number>;
  /** Steps replayed. */
  readonly count: number;

  /** `released(i)`: the value ids no step after step `i` reads. */
  constructor(
    first: readonly (Take | undefined)[],
    second: readonly (Take | undefined)[],
    released: (i: number) => readonly number[],
  ) {
    const symbols = new Map<string, number>();
    const { replayed, runs } = replayedRuns(first, second);
    this.starts = second.map(() => null);
    let count = 0;
    for (const [i, end] of runs) {
      const mark = second[i]!.mark;
      const allocs: number[] = [];
      const calls: (() => unknown)[] = [];
      const live = new Map<number, Tensor>();
      const drop: number[] = [];
      for (let j = i; j < end; j++) {
        const take = second[j]!;
        for (const [s, v] of take.symbols) symbols.set(s, v);
        allocs.push(...take.allocs);
        calls.push(...take.calls.map(bound));
        for (const [id, t] of take.outputs) live.set(id, t);
        for (const id of released(j)) if (!live.delete(id)) drop.push(id);
      }
      this.starts[i] = {
        end,
        allocs,
        mark,
        calls,
        ids: [...live.keys()],
        tensors: [...live.values()],
        drop,
      };
      count += end - i;
    }
    this.expected = second.map((b, i) => (b && !replayed[i] && b.held.size > 0 ? b.held : null));
    this.symbols = symbols;
    this.count = count;
  }
}

/**
 * The replay state of one sequence's one-token runs (a session's decode): recordings, then a
 * plan per thread count. One run at a time.
 */
export class StepReplay {
  readonly #plans = new Map<number, Plan>();
  readonly #recorded = new Map<number, readonly (Take | undefined)[]>();
  #recordings = 0;

  /** Steps the plan for `threads` replays (0 before there is one). */
  replayedSteps(threads: number): number {
    return this.#plans.get(threads)?.count ?? 0;
  }

  /** @internal How the next run goes (the executor's): replayed, recorded, or neither. */
  start(kernels: Kernels, arena: RunArena, bindings: Bindings): Replaying | Recording | null {
    const threads = kernels.threads;
    const plan = this.#plans.get(threads);
    if (plan) {
      for (const [s, v] of plan.symbols) if (bindings.get(s) !== v) return null;
      return new Replaying(() => this.#plans.delete(threads), plan, kernels, arena);
    }
    if (this.#recordings >= MAX_RECORDINGS) return null;
    this.#recordings++;
    return new Recording(kernels, arena, bindings);
  }

  /**
   * @internal A recorded run completed: with the one before it (same threads), it makes a plan.
   * `released(i)` gives the value ids no step after step `i` reads.
   */
  recorded(recording: Recording, released: (i: number) => readonly number[]): void {
    const threads = recording.threads;
    if (!recording.settled) {
      this.#recorded.delete(threads);
      return;
    }
    const before = this.#recorded.get(threads);
    this.#recorded.set(threads, recording.takes);
    if (before) {
      const plan = new Plan(before, recording.takes, released);
      if (plan.count > 0) this.#plans.set(threads, plan);
      this.#recorded.delete(threads);
    }
  }
}

/** One run replaying a plan; it stops replaying at the first step that does not line up. */
export class Replaying {
  /** Drops the plan, so that the next run records again. */
  readonly #drop: () => void;
  readonly #plan: Plan;
  readonly #kernels: Kernels;
  readonly #arena: RunArena;
  #on = true;

  constructor(drop: () => void, plan: Plan, kernels: Kernels, arena: RunArena) {
    this.#drop = drop;
    this.#plan = plan;
    this.#kernels = kernels;
    this.#arena = arena;
  }

  /**
   * Replays the steps from `i` on that the plan replays together, into `values` (releases
   * included); returns the step after them, or -1 when step `i` must run as usual.
   */
  replay(i: number, values: Map<number, Tensor>): number {
    if (!this.#on) return -1;
    const r = this.#plan.starts[i];
    if (!r) return -1;
    if (!replayRun(this.#kernels, this.#arena, r)) return this.#leave();
    const { ids, tensors } = r;
    for (let j = 0; j < ids.length; j++) values.set(ids[j]!, tensors[j]!);
    for (const id of r.drop) values.delete(id);
    return r.end;
  }

  /** Step `i` ran as usual: checks that its outputs lie where they were recorded. */
  check(i: number, values: ReadonlyMap<number, Tensor>): void {
    if (!this.#on) return;
    const expected = this.#plan.expected[i];
    if (!expected) return;
    for (const [id, t] of expected) {
      const now = values.get(id);
      if (!now || !sameLayout(now, t)) {
        this.#leave();
        return;
      }
    }
  }

  #leave(): -1 {
    this.#on = false;
    this.#drop();
    return -1;
  }
}
