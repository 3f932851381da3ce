/**
 * Batched steps replayed from a recording, as `replay.ts` replays one sequence's decode.
 *
 * While the same sequences step together (each decoding a token), most steps of the batched
 * run make the same kernel calls on the same places of the run arena at every step: the steps
 * over the stacked rows (the linears, norms, RoPE, the MLP) and the per-sequence views between
 * them. Two runs of one composition (thread count, tokens of each sequence) are recorded step
 * by step: the kernel calls and arena allocations, where each value the step read or set lay,
 * and the symbols it read. A step that did the same in both, read and set only arena values and
 * constants, and made no write of its own into the kernels' memory is replayed in the runs of
 * that composition that follow: its allocations are taken again (each must land where it was
 * recorded), its calls made again, and the values it set are set again. Every other step
 * (attention, the cache appends, anything reading a position) runs as usual; should a value it
 * sets lie elsewhere than recorded, the rest of the run runs as usual and the composition is
 * recorded again.
 */
import type { KernelCall, Kernels, KernelTape, RunArena } from "../../kernels/mod.ts";
import type { Bindings } from "../tensor/dim.ts";
import { bound, replayedRuns, replayRun, WatchedBindings } from "./replay.ts";

/** Compositions whose plans are kept (the most recently made). */
const MAX_PLANS = 4;

/** A value a step set: into the run's values, or into the last rows of a value (`last`). */
export interface Effect<V> {
  readonly id: number;
  readonly last: boolean;
  readonly value: V;
}

/** How a run's values are compared: a value's place in the arena, as a key or with another. */
export interface Layouts<V> {
  /** A string naming where `v` lies, or null when it does not lie in the arena (nor is constant). */
  key(v: V): string | null;
  /** True when `a` and `b` lie over the same items in the same order. */
  same(a: V, b: V): boolean;
}

/** What one step did in a recorded run. */
interface Take<V> {
  /** Everything that must match between two runs for the step to be replayed; null: never. */
  readonly key: string | null;
  readonly calls: readonly KernelCall[];
  /** Run-arena allocations, (offset, bytes) pairs. */
  readonly allocs: readonly number[];
  /** Top of the kernels' activation arena when the step began. */
  readonly mark: number;
  readonly effects: readonly Effect<V>[];
  /** The effects whose values lie in the arena: what the step must set again, where it did. */
  readonly held: readonly Effect<V>[];
  /** The symbols it read: sequence, name, value. */
  readonly symbols: readonly (readonly [number, string, number])[];
}

/** One batched run being recorded. */
export class BatchRecording<V> {
  /** Each sequence's bindings, noting the symbols read. */
  readonly bindings: readonly WatchedBindings[];
  readonly #kernels: Kernels;
  readonly #arena: RunArena;
  readonly #layouts: Layouts<V>;
  readonly #takes: (Take<V> | undefined)[] = [];
  #tape: KernelTape = { calls: [], allocs: [], hostWrites: 0 };
  #mark = 0;
  #effects: Effect<V>[] = [];

  constructor(
    kernels: Kernels,
    arena: RunArena,
    bindings: readonly Bindings[],
    layouts: Layouts<V>,
  ) {
    this.#kernels = kernels;
    this.#arena = arena;
    this.#layouts = layouts;
    this.bindings = bindings.map((b) => new WatchedBindings(b));
  }

  /** A step begins: its kernel calls go to a tape of its own. */
  begin(): void {
    this.#tape = { calls: [], allocs: [], hostWrites: 0 };
    this.#mark = this.#kernels.mark();
    this.#effects = [];
    for (const b of this.bindings) b.read.clear();
    this.#kernels.tape = this.#tape;
  }

  /** The current step set `value` (see {@link Effect}). */
  set(id: number, last: boolean, value: V): void {
    this.#effects.push({ id, last, value });
  }

  /** Stops recording calls (also when a step threw). */
  stop(): void {
    this.#kernels.tape = null;
  }

  /** Step `i` ended; `reads` are the values it read as they were before it (null: none held). */
  end(i: number, reads: readonly (V | null)[]): void {
    this.stop();
    const tape = this.#tape;
    const layouts = this.#layouts;
    const symbols = this.bindings.flatMap((b, k) =>
      [...b.read].sort().map((s) => [k, s, b.get(s)!] as const)
    );
    const places = reads.map((v) => (v === null ? "-" : layouts.key(v)));
    places.push("->");
    const held: Effect<V>[] = [];
    for (const e of this.#effects) {
      const place = layouts.key(e.value);
      places.push(place === null ? null : `${e.last ? "last " : ""}${e.id} ${place}`);
      if (place !== null) held.push(e);
    }
    let key: string | null = null;
    if (tape.hostWrites === 0 && !places.includes(null) && this.#effects.length > 0) {
      const calls = tape.calls.map((c) => ("fn" in c ? [c.name, c.args] : [c.job, c.threads]));
      key = JSON.stringify([calls, tape.allocs, this.#mark, places, symbols]);
    }
    this.#takes[i] = {
      key,
      calls: tape.calls,
      allocs: tape.allocs,
      mark: this.#mark,
      effects: this.#effects,
      held,
      symbols,
    };
  }

  get takes(): readonly (Take<V> | undefined)[] {
    return this.#takes;
  }

  /** True when the arena never had to free space in this run (its offsets follow the sizes). */
  get settled(): boolean {
    return this.#arena.collections === 0;
  }
}

/** Consecutive replayed steps, replayed as one. */
interface Segment<V> {
  /** The step after its last. */
  readonly end: number;
  readonly allocs: readonly number[];
  readonly mark: number;
  readonly calls: readonly (() => unknown)[];
  /** Per step of the segment, in order, the values it set. */
  readonly effects: readonly (readonly Effect<V>[])[];
}

/** Which steps replay, from two recordings of one composition. */
class Plan<V> {
  readonly starts: (Segment<V> | null)[];
  /** Per step that runs as usual: the arena values it must set where they were recorded. */
  readonly expected: (readonly Effect<V>[] | null)[];
  /** The symbols the replayed steps read (sequence, name), with the values they must have. */
  readonly symbols: readonly (readonly [number, string, number])[];
  readonly count: number;

  constructor(first: readonly (Take<V> | undefined)[], second: readonly (Take<V> | undefined)[]) {
    const { replayed, runs } = replayedRuns(first, second);
    this.starts = second.map(() => null);
    const symbols = new Map<string, readonly [number, string, number]>();
    let count = 0;
    for (const [i, end] of runs) {
      const takes = second.slice(i, end) as Take<V>[];
      for (const t of takes) for (const r of t.symbols) symbols.set(`${r[0]} ${r[1]}`, r);
      this.starts[i] = {
        end,
        allocs: takes.flatMap((t) => t.allocs),
        mark: takes[0]!.mark,
        calls: takes.flatMap((t) => t.calls.map(bound)),
        effects: takes.map((t) => t.effects),
      };
      count += end - i;
    }
    this.symbols = [...symbols.values()];
    this.expected = second.map((b, i) => (b && !replayed[i] && b.held.length > 0 ? b.held : null));
    this.count = count;
  }
}

/**
 * The replay state of a batch plan's runs: per composition, recordings and then a plan. A
 * composition is recorded only when it repeats (the run before had it too), so that steps
 * whose sequences keep changing do not pay for recordings that never replay.
 */
export class BatchReplay<V> {
  readonly #plans = new Map<string, Plan<V>>();
  /** The last recording, while the one after it may pair with it. */
  #recorded: { composition: string; takes: readonly (Take<V> | undefined)[] } | null = null;
  #previous = "";

  /** Steps the plan of `composition` replays (0 before there is one). */
  replayedSteps(composition: string): number {
    return this.#plans.get(composition)?.count ?? 0;
  }

  /** How the next run of `composition` goes: replayed, recorded, or neither. */
  start(
    composition: string,
    kernels: Kernels,
    arena: RunArena,
    bindings: readonly Bindings[],
    layouts: Layouts<V>,
  ): BatchReplaying<V> | BatchRecording<V> | null {
    const repeated = composition === this.#previous;
    this.#previous = composition;
    const plan = this.#plans.get(composition);
    if (plan) {
      if (plan.symbols.some(([k, s, v]) => bindings[k]?.get(s) !== v)) return null;
      return new BatchReplaying(() => this.#plans.delete(composition), plan, kernels, arena);
    }
    return repeated ? new BatchRecording(kernels, arena, bindings, layouts) : null;
  }

  /** A recorded run of `composition` completed: with the one before it, it makes a plan. */
  recorded(composition: string, recording: BatchRecording<V>): void {
    const before = this.#recorded?.composition === composition ? this.#recorded.takes : null;
    this.#recorded = recording.settled && !before ? { composition, takes: recording.takes } : null;
    if (!before || !recording.settled) return;
    const plan = new Plan(before, recording.takes);
    if (plan.count === 0) return;
    this.#plans.delete(composition);
    this.#plans.set(composition, plan);
    if (this.#plans.size > MAX_PLANS) this.#plans.delete(this.#plans.keys().next().value!);
  }
}

/** One batched run replaying a plan; it stops replaying at the first step that does not line up. */
export class BatchReplaying<V> {
  readonly #drop: () => void;
  readonly #plan: Plan<V>;
  readonly #kernels: Kernels;
  readonly #arena: RunArena;
  #on = true;

  constructor(drop: () => void, plan: Plan<V>, kernels: Kernels, arena: RunArena) {
    this.#drop = drop;
    this.#plan = plan;
    this.#kernels = kernels;
    this.#arena = arena;
  }

  /**
   * Replays the steps from `i` on that the plan replays together: `set` takes each value they
   * set, `released(j)` follows each step j; returns the step after them, or -1 when step `i`
   * must run as usual.
   */
  replay(i: number, set: (e: Effect<V>) => void, released: (j: number) => void): number {
    if (!this.#on) return -1;
    const r = this.#plan.starts[i];
    if (!r) return -1;
    if (!replayRun(this.#kernels, this.#arena, r)) return this.#leave();
    r.effects.forEach((effects, k) => {
      for (const e of effects) set(e);
      released(i + k);
    });
    return r.end;
  }

  /** Step `i` ran as usual: checks that the arena values it set lie where they were recorded. */
  check(i: number, now: (e: Effect<V>) => V | undefined, layouts: Layouts<V>): void {
    if (!this.#on) return;
    const expected = this.#plan.expected[i];
    if (!expected) return;
    for (const e of expected) {
      const v = now(e);
      if (v === undefined || !layouts.same(v, e.value)) {
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
