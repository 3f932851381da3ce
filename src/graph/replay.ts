/**
 * Runs of a graph replayed from a recording, so that decoding does not walk every step's
 * TypeScript again for work that does not move from one token to the next: one sequence's
 * one-token runs (`StepReplay`, the executor's) and batched runs of the same sequences
 * (`BatchReplay`, `batch.ts`'s).
 *
 * Two runs are recorded step by step: the kernel calls each step made, the run-arena
 * allocations it got, where the values it read and set lay (the items of small ones held
 * elsewhere, such as a shape's dims) and which symbols it read. A step that did the same in
 * both, read arena values, constants and small values with the same items, set only arena
 * values, and made no write of its own into the kernels' memory (`Kernels.noteHostWrite`) is
 * replayed in later runs, as long as the small values it reads hold those items again: its
 * allocations are taken again (each must land where it was recorded), its calls are made
 * again as recorded, and the values it set are the recorded views.
 *
 * In one sequence's runs, the position moves from one token to the next. A paged cache view
 * lies where it did when it covers as many positions past the run's position; a call's
 * arguments that are positions (`KernelCall.positions`) move with it, once the call says it
 * would be made the same there (`KernelCall.fits`); and an input a fused call reads only a
 * key of (attention reads of its mask whether it is causal: `FusedCall.standIn`) is checked by
 * that key. So the cache appends and attention replay at every token, and only what computes
 * new values from the position (the mask, RoPE's rows) runs as usual. Should any allocation,
 * or a value set by a step that ran as usual, lie elsewhere than recorded, the rest of the run
 * runs as usual and the recording starts over. A batch whose sequences each take as many new
 * tokens moves them all as far: its paged views are keyed relative to its first sequence's
 * position, and its appends and attention replay the same way.
 *
 * What this buys is the walk itself, not the kernels: at the 110M shape, a token's graph
 * runs 323 steps, and the TypeScript between kernel calls took about 1.5 ms of 5.6. */
import { type Tensor, volume } from "../tensor/tensor.ts";
import { contiguous, isStrided } from "../ops/common.ts";
import { isPaged } from "../tensor/paged.ts";
import type { Bindings } from "../tensor/dim.ts";
import type { KernelCall, Kernels, KernelTape, RunArena } from "../../kernels/mod.ts";

/** Recordings that may start over after a replay left its plan, per session. */
const MAX_RECORDINGS = 8;
/**
 * Runs a plan must have replayed for the two recordings that made it to be given back when it
 * is left. A sequence's plan is left now and then as its position moves (attention starts
 * splitting over the threads, its scores outgrow their scratch, its pool grows, a new request
 * starts it over), which must not use up a long-lived session's recordings.
 */
const PAID_OFF_RUNS = 2;
/**
 * Most steps replayed as one. A run pauses for the event loop only between two of its
 * segments, so a token replayed whole would hold a server's `/health` and arrivals for a
 * whole step: about 25 ms for eight sequences of the 110M shape at two threads (`health_p99_ms`
 * 28 ms in `bench:serve`), some 100 µs a step.
 */
const MAX_SEGMENT_STEPS = 48;
/** Compositions of a batch plan whose replay plans are kept (the most recently made). */
const MAX_BATCH_PLANS = 4;
/** Most items of a value held outside the arena that a replayed step may read (by its items). */
const MAX_GUARDED_ITEMS = 16;

/** Bindings that note which symbols are read. */
class WatchedBindings extends Map<string, number> {
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

/** How `t` lies in `arena`, or null when it does not lie there. */
function arenaLayout(t: Tensor, arena: RunArena): string | null {
  if (isPaged(t) || !(t.data instanceof Float32Array) || !arena.holds(t.data)) return null;
  const where = `${t.data.byteOffset}+${t.data.length}:${t.shape.join("x")}`;
  return isStrided(t) ? `${where}@${t.offset}/${t.strides.join(",")}` : where;
}

/** The items of `t` as a key, when it is small and held outside the kernels' memory; else null. */
function smallItems(t: Tensor): string | null {
  if (isPaged(t) || volume(t.shape) > MAX_GUARDED_ITEMS) return null;
  const items = Array.from(contiguous(t).data as ArrayLike<unknown>);
  return `${t.dtype} [${t.shape.join(",")}] ${items.join(",")}`;
}

/**
 * Where a paged cache view lies relative to the run's `position`: its region, its block table in
 * the kernels' memory, and how many positions it covers past the run's.
 */
function pagedLayout(t: Tensor, position: number): string | null {
  if (!isPaged(t) || t.paged.memory === null || t.paged.tableAt < 0) return null;
  return `paged ${t.paged.offset}@${t.paged.tableAt} P+${t.paged.length - position}`;
}

/**
 * Where a run's values lie, to compare two runs: a key naming where `v` lies (null when it
 * lies neither in the run arena nor among the constants, nor, in one sequence's runs, in the
 * paged cache), and the items of a small value held elsewhere (see `smallItems`). A value whose
 * key is relative to the run's position (a paged view) is `relative`, and `moved` gives it
 * over `by` more positions.
 */
export interface Layouts<V> {
  key(v: V): string | null;
  items(v: V): string | null;
  relative(v: V): boolean;
  moved(v: V, by: number): V;
}

/**
 * A value a step set, by a number: a value id (the executor's runs, a batch's values), or
 * whatever else the run keeps by number (a batch's last rows, as `-1 - id`).
 */
type Setting<V> = readonly [key: number, value: V];

/**
 * A value a step read by a number (see `Setting`), null when it is a constant; with `standIn`,
 * the step reads only what that key of it says (a mask, of which attention reads whether it
 * is causal), and the key stands in for where it lies.
 */
export type Read<V> = readonly [key: number, value: V | null, standIn?: (v: V) => string | null];

/**
 * A value from outside the replayed steps that a step read, by its key, as it must be again:
 * `keyOf` it (its items, where it lies, or a stand-in), in the layouts of the run at hand,
 * must be `expected`.
 */
type Guard<V> = readonly [
  key: number,
  expected: string,
  keyOf: (layouts: Layouts<V>, v: V) => string | null,
];

/** A value a step set in the arena (or the paged cache), by its key, with where it lay. */
type Held = readonly [key: number, place: string];

/** What one step did in a recorded run. */
interface Take<V> {
  /** Everything that must match between two runs for the step to be replayed; null: never. */
  readonly key: string | null;
  readonly calls: readonly KernelCall[];
  /** Run-arena allocations, (offset, bytes) pairs. */
  readonly allocs: readonly number[];
  /** Top of the kernels' activation arena when the step began (the calls' scratch lies above). */
  readonly mark: number;
  /** The values it set, in order. */
  readonly sets: readonly Setting<V>[];
  /** Those of them that lie in the run arena: what it must set again, where it did. */
  readonly held: readonly Held[];
  /** The symbols it read: bindings index, name, value. */
  readonly symbols: readonly (readonly [number, string, number])[];
  /** The values it read that a replay checks first (see `Guard`). */
  readonly guards: readonly Guard<V>[];
}

/** A call's arguments as a key, its positions relative to the run's `position` (when given). */
function callKey(c: KernelCall, position: number | null): unknown {
  const { positions } = c;
  const args = (a: readonly number[]) =>
    position === null || !positions
      ? a
      : a.map((x, i) => (positions.includes(i) ? `P+${x - position}` : x));
  if ("fn" in c) return [c.name, args(c.args)];
  return [c.job.map((t) => ({ ...t, args: args(t.args) })), c.threads];
}

/**
 * A copy of `args` (`moved`) and `move(by)`, which rewrites those at `positions` as moved `by`
 * positions from `args`: one array per call that each replay overwrites (the kernel or the
 * pool reads it before the next call).
 */
function mover(
  args: readonly number[],
  positions: readonly number[],
): { moved: number[]; move: (by: number) => void } {
  const moved = args.slice();
  return {
    moved,
    move: (by) => {
      for (const i of positions) moved[i] = args[i]! + by;
    },
  };
}

/** One run being recorded. */
export class Recording<V> {
  /** The run's bindings (one per sequence of a batch), noting the symbols read. */
  readonly bindings: readonly WatchedBindings[];
  /** Kernel threads of the run (its pool jobs carry them). */
  readonly threads: number;
  /** The run's position: its sequence's, a batch's first sequence's (see `BatchReplay.start`). */
  readonly position: number | null;
  readonly #kernels: Kernels;
  readonly #arena: RunArena;
  readonly #layouts: Layouts<V>;
  /** Per step recorded, what it did (the others are undefined). */
  readonly #takes: (Take<V> | undefined)[] = [];
  #tape: KernelTape = { calls: [], allocs: [], hostWrites: 0 };
  #mark = 0;
  #sets: Setting<V>[] = [];

  constructor(
    kernels: Kernels,
    arena: RunArena,
    bindings: readonly Bindings[],
    layouts: Layouts<V>,
    position: number | null,
  ) {
    this.#kernels = kernels;
    this.#arena = arena;
    this.#layouts = layouts;
    this.threads = kernels.threads;
    this.position = position;
    this.bindings = bindings.map((b) => new WatchedBindings(b));
  }

  /** A step begins: its kernel calls go to a tape of its own. */
  begin(): void {
    this.#tape = { calls: [], allocs: [], hostWrites: 0 };
    this.#mark = this.#kernels.mark();
    this.#sets = [];
    for (const b of this.bindings) b.read.clear();
    this.#kernels.tape = this.#tape;
  }

  /** The current step set `value` under `key` (see `Setting`). */
  set(key: number, value: V): void {
    this.#sets.push([key, value]);
  }

  /** Stops recording calls (also when a step threw). */
  stop(): void {
    this.#kernels.tape = null;
  }

  /** Step `i` ended; `reads` are the values it read as they were before it. */
  end(i: number, reads: readonly Read<V>[]): void {
    this.stop();
    const tape = this.#tape;
    const layouts = this.#layouts;
    const symbols = this.bindings.flatMap((b, k) =>
      [...b.read].sort().map((s) => [k, s, b.get(s)!] as const)
    );
    const guards: Guard<V>[] = [];
    const places = reads.map(([k, v, standIn]) => {
      if (v === null) return "c";
      if (standIn) {
        const key = standIn(v);
        if (key !== null) guards.push([k, key, (_, u) => standIn(u)]);
        return key === null ? null : `~ ${key}`;
      }
      const place = layouts.key(v);
      if (place !== null) {
        if (layouts.relative(v)) guards.push([k, place, (l, u) => l.key(u)]);
        return place;
      }
      const items = layouts.items(v);
      if (items !== null) guards.push([k, items, (l, u) => l.items(u)]);
      return items === null ? null : `= ${items}`;
    });
    places.push("->");
    const held: Held[] = [];
    for (const [k, v] of this.#sets) {
      const place = layouts.key(v);
      places.push(place === null ? null : `${k} ${place}`);
      if (place !== null) held.push([k, place]);
    }
    let key: string | null = null;
    if (tape.hostWrites === 0 && !places.includes(null) && this.#sets.length > 0) {
      const calls = tape.calls.map((c) => callKey(c, this.position));
      key = JSON.stringify([calls, tape.allocs, this.#mark, places, symbols]);
    }
    const { calls, allocs } = tape;
    const sets = this.#sets;
    this.#takes[i] = { key, calls, allocs, mark: this.#mark, sets, held, symbols, guards };
  }

  /** The steps' takes, in run order. */
  get takes(): readonly (Take<V> | undefined)[] {
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
interface Segment<V> {
  /** The step after its last. */
  readonly end: number;
  /** Run-arena allocations in order, (offset, bytes) pairs. */
  readonly allocs: readonly number[];
  /** Top of the activation arena when each of its steps began. */
  readonly mark: number;
  /** Its kernel calls, each bound to its arguments, given how far the position moved. */
  readonly calls: readonly ((by: number) => unknown)[];
  /** The values still live after it, as recorded. */
  readonly live: readonly Setting<V>[];
  /** Keys of values from before it that its steps were the last to read. */
  readonly drop: readonly number[];
  /** The values from before it that its steps read, as they must be again (see `Guard`). */
  readonly guards: readonly Guard<V>[];
  /** Whether its calls would be made the same `by` positions later (see `KernelCall.fits`). */
  readonly fits: readonly ((by: number) => boolean)[];
}

/**
 * A recorded kernel call, bound to make again `by` positions later: its positions move by as
 * much. (A kernel export ignores the extra argument a call without positions passes it.)
 */
function bound(c: KernelCall): (by: number) => unknown {
  const { positions } = c;
  if (!("fn" in c)) {
    const { job, threads, pool } = c;
    if (!positions) return () => pool.run(job, threads);
    const movers = job.map((t) => mover(t.args, positions));
    const tasks = job.map((t, i) => ({ ...t, args: movers[i]!.moved }));
    return (by) => {
      for (const m of movers) m.move(by);
      pool.run(tasks, threads);
    };
  }
  const { fn, args } = c;
  if (!positions) return fn.bind(null, ...args);
  const { moved, move } = mover(args, positions);
  return (by) => {
    move(by);
    return fn(...moved);
  };
}

/**
 * Which steps replay, from two recordings: those they agree on (same non-null key), in
 * segments of consecutive steps that began at the same top of the activation arena.
 */
class Plan<V> {
  /** Per step: the segment that starts there, or null. */
  readonly starts: (Segment<V> | null)[];
  /** Per step that runs as usual: the arena values it must set where they were recorded. */
  readonly expected: (readonly Held[] | null)[];
  /** The symbols the replayed steps read (bindings index, name), with their values. */
  readonly symbols: readonly (readonly [number, string, number])[];
  /** Steps replayed. */
  readonly count: number;
  /** Runs that replayed it. */
  runs = 0;
  /** The run's position (see `Recording.position`) in the run the plan's calls come from. */
  readonly position: number | null;

  /** `released(i)`: the keys of the values no step after step `i` reads. */
  constructor(
    first: readonly (Take<V> | undefined)[],
    second: readonly (Take<V> | undefined)[],
    released: (i: number) => readonly number[],
    position: number | null,
  ) {
    this.position = position;
    const replayed = second.map((b, i) => b?.key != null && first[i]?.key === b.key);
    const symbols = new Map<string, readonly [number, string, number]>();
    this.starts = second.map(() => null);
    let count = 0;
    for (let i = 0; i < second.length;) {
      if (!replayed[i]) {
        i++;
        continue;
      }
      const mark = second[i]!.mark;
      let end = i;
      while (
        end < second.length && replayed[end] && second[end]!.mark === mark &&
        end - i < MAX_SEGMENT_STEPS
      ) end++;
      const allocs: number[] = [];
      const calls: ((by: number) => unknown)[] = [];
      const live = new Map<number, V>();
      const drop: number[] = [];
      const guards: Guard<V>[] = [];
      const fits: ((by: number) => boolean)[] = [];
      for (let j = i; j < end; j++) {
        const take = second[j]!;
        // Values its earlier steps set are checked where they are set, not before the segment.
        guards.push(...take.guards.filter(([k]) => !live.has(k)));
        // Calls of one kernel op share their check (the calls of one attention step).
        for (const c of take.calls) if (c.fits && !fits.includes(c.fits)) fits.push(c.fits);
        for (const r of take.symbols) symbols.set(`${r[0]} ${r[1]}`, r);
        allocs.push(...take.allocs);
        calls.push(...take.calls.map(bound));
        for (const [k, v] of take.sets) live.set(k, v);
        for (const k of released(j)) if (!live.delete(k)) drop.push(k);
      }
      this.starts[i] = { end, allocs, mark, calls, live: [...live], drop, guards, fits };
      count += end - i;
      i = end;
    }
    this.expected = second.map((b, i) => b && !replayed[i] && b.held.length > 0 ? b.held : null);
    this.symbols = [...symbols.values()];
    this.count = count;
  }

  /** True when `bindings` give the symbols the replayed steps read the values they read. */
  fits(bindings: readonly Bindings[]): boolean {
    return this.symbols.every(([k, s, v]) => bindings[k]?.get(s) === v);
  }
}

/** How a replay reaches the run's values by key. */
export interface Values<V> {
  get(key: number): V | undefined;
  set(key: number, value: V): void;
  delete(key: number): void;
}

/** One run replaying a plan; it stops replaying at the first step that does not line up. */
export class Replaying<V> {
  /** Drops the plan, so that the next run records again. */
  readonly #drop: () => void;
  readonly #plan: Plan<V>;
  readonly #kernels: Kernels;
  readonly #arena: RunArena;
  readonly #layouts: Layouts<V>;
  /** How far the sequence's position moved since the run the plan's calls come from. */
  readonly #by: number;
  #on = true;

  constructor(
    drop: () => void,
    plan: Plan<V>,
    kernels: Kernels,
    arena: RunArena,
    layouts: Layouts<V>,
    position: number | null,
  ) {
    this.#drop = drop;
    this.#plan = plan;
    this.#kernels = kernels;
    this.#arena = arena;
    this.#layouts = layouts;
    this.#by = position === null || plan.position === null ? 0 : position - plan.position;
  }

  /**
   * Replays the steps from `i` on that the plan replays together, into `values` (releases
   * included); returns the step after them, or -1 when step `i` must run as usual.
   */
  replay(i: number, values: Values<V>): number {
    if (!this.#on) return -1;
    const r = this.#plan.starts[i];
    if (!r) return -1;
    if (this.#kernels.mark() !== r.mark) return this.#leave();
    const layouts = this.#layouts;
    for (const [k, expected, keyOf] of r.guards) {
      const v = values.get(k);
      if (v === undefined || keyOf(layouts, v) !== expected) return this.#leave();
    }
    const by = this.#by;
    if (by !== 0 && !r.fits.every((f) => f(by))) return this.#leave();
    const allocs = r.allocs;
    for (let j = 0; j < allocs.length; j += 2) {
      if (this.#arena.alloc(allocs[j + 1]!) !== allocs[j]) return this.#leave();
    }
    for (const call of r.calls) call(by);
    for (const [k, v] of r.live) values.set(k, layouts.moved(v, by));
    for (const k of r.drop) values.delete(k);
    return r.end;
  }

  /** Step `i` ran as usual: checks that the arena values it set lie where they were recorded. */
  check(i: number, values: Values<V>): void {
    if (!this.#on) return;
    const expected = this.#plan.expected[i];
    if (!expected) return;
    for (const [k, place] of expected) {
      const now = values.get(k);
      if (now === undefined || this.#layouts.key(now) !== place) {
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

/**
 * Where the tensors of a run at `position` lie: in `arena`, or in the paged cache (not keyed
 * when `position` is null: a batch whose sequences move unequally).
 */
export function tensorLayouts(arena: RunArena, position: number | null): Layouts<Tensor> {
  return {
    key: (t) => arenaLayout(t, arena) ?? (position === null ? null : pagedLayout(t, position)),
    items: smallItems,
    relative: isPaged,
    moved: (t, by) => (by !== 0 && isPaged(t) && t.moved ? t.moved(by) : t),
  };
}

/**
 * The replay state of one sequence's one-token runs (a session's decode): recordings, then a
 * plan per thread count. One run at a time.
 */
export class StepReplay {
  readonly #plans = new Map<number, Plan<Tensor>>();
  readonly #recorded = new Map<number, readonly (Take<Tensor> | undefined)[]>();
  #recordings = 0;

  /** Steps the plan for `threads` replays (0 before there is one). */
  replayedSteps(threads: number): number {
    return this.#plans.get(threads)?.count ?? 0;
  }

  /**
   * @internal How the next run goes (the executor's), the sequence at `position`: replayed,
   * recorded, or neither.
   */
  start(
    kernels: Kernels,
    arena: RunArena,
    bindings: Bindings,
    position: number,
  ): Replaying<Tensor> | Recording<Tensor> | null {
    const threads = kernels.threads;
    const plan = this.#plans.get(threads);
    const layouts = tensorLayouts(arena, position);
    if (plan) {
      if (!plan.fits([bindings])) return null;
      plan.runs++;
      const drop = () => {
        this.#plans.delete(threads);
        if (plan.runs >= PAID_OFF_RUNS) this.#recordings = Math.max(0, this.#recordings - 2);
      };
      return new Replaying(drop, plan, kernels, arena, layouts, position);
    }
    if (this.#recordings >= MAX_RECORDINGS) return null;
    this.#recordings++;
    return new Recording(kernels, arena, [bindings], layouts, position);
  }

  /**
   * @internal A recorded run completed: with the one before it (same threads), it makes a plan.
   * `released(i)` gives the value ids no step after step `i` reads.
   */
  recorded(recording: Recording<Tensor>, released: (i: number) => readonly number[]): void {
    const threads = recording.threads;
    if (!recording.settled) {
      this.#recorded.delete(threads);
      return;
    }
    const before = this.#recorded.get(threads);
    this.#recorded.set(threads, recording.takes);
    if (before) {
      const plan = new Plan(before, recording.takes, released, recording.position);
      if (plan.count > 0) this.#plans.set(threads, plan);
      this.#recorded.delete(threads);
    }
  }
}

/**
 * The replay state of a batch plan's runs (`batch.ts`): per composition (thread count, new
 * tokens of each sequence), recordings and then a plan. A composition is recorded only when
 * it repeats (the run before had it too), so that steps whose sequences keep changing do not
 * pay for recordings that never replay; the `MAX_BATCH_PLANS` most recent plans are kept.
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

  /**
   * How the next run of `composition` goes: replayed, recorded, or neither. `position` is the
   * first sequence's, when every sequence moves as far from one run to the next (paged views
   * are then keyed relative to it); else null.
   */
  start(
    composition: string,
    kernels: Kernels,
    arena: RunArena,
    bindings: readonly Bindings[],
    layouts: Layouts<V>,
    position: number | null,
  ): Replaying<V> | Recording<V> | null {
    const repeated = composition === this.#previous;
    this.#previous = composition;
    const plan = this.#plans.get(composition);
    if (plan) {
      if (!plan.fits(bindings)) return null;
      const drop = () => this.#plans.delete(composition);
      return new Replaying(drop, plan, kernels, arena, layouts, position);
    }
    return repeated ? new Recording(kernels, arena, bindings, layouts, position) : null;
  }

  /**
   * A recorded run of `composition` completed: with the one before it, it makes a plan.
   * `released(i)` gives the keys of the values no step after step `i` reads.
   */
  recorded(
    composition: string,
    recording: Recording<V>,
    released: (i: number) => readonly number[],
  ): void {
    const before = this.#recorded?.composition === composition ? this.#recorded.takes : null;
    this.#recorded = recording.settled && !before ? { composition, takes: recording.takes } : null;
    if (!before || !recording.settled) return;
    const plan = new Plan(before, recording.takes, released, recording.position);
    if (plan.count === 0) return;
    this.#plans.delete(composition);
    this.#plans.set(composition, plan);
    if (this.#plans.size > MAX_BATCH_PLANS) this.#plans.delete(this.#plans.keys().next().value!);
  }
}
