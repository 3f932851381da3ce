/**
 * Runs a compiled graph over several sequences in one pass.
 *
 * Each sequence (a segment) brings its new tokens, its own symbols (`S` new tokens, `P` past
 * ones) and its own cache inputs. The tokens of all segments are stacked along the token
 * input's symbolic axis; every step whose op keeps rows apart (see `row_axes.ts`) then runs
 * once over the stack (one pass over each weight for all sequences), and every other step
 * (attention, the cache appends, anything reading `P`) runs once per segment on that
 * segment's rows, with its own bindings. Values move between the two forms as steps need:
 * a stack is sliced into per-segment views, per-segment parts are stacked again.
 *
 * A segment's results are those of running it alone, item for item, provided each op (and
 * kernel) computes a row the same way whatever other rows it runs with.
 *
 * Of an output whose readers take only each segment's last row (the logits of a step), only
 * those rows are computed: every rows step that feeds nothing else runs on the last row of
 * each segment (the final norm and classifier, the last layer after its attention).
 */
import { strides as rowMajorStrides, type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { contiguous, isStrided, type StridedTensor, stridedView } from "../ops/common.ts";
import type { EvalContext } from "../ops/op.ts";
import type { Kernels, RunArena } from "../../kernels/mod.ts";
import { type Bindings, type Dim, evalDim, symbolOf } from "../tensor/dim.ts";
import {
  evalDims,
  evalStep,
  type FusedStep,
  type NodeOverride,
  type NodeStep,
  type Step,
} from "./steps.ts";
import { type Executor, heldViews, type Pause, settle, staged } from "./executor.ts";
import { type AttrTemplate, type Node, resolveAttr, templateWires } from "./graph.ts";
import { type RowAxis, rowAxisOf } from "./row_axes.ts";
import { sliceWindow } from "../ops/slice.ts";
import {
  BatchReplay,
  type Layouts,
  type Read,
  Recording,
  Replaying,
  tensorLayouts,
  type Values,
} from "./replay.ts";

export type { Pause } from "./executor.ts";

/** One sequence's share of a batched run. */
export interface Segment {
  /** Its graph inputs by name; the token input holds its new tokens only. */
  readonly inputs: ReadonlyMap<string, Tensor>;
  /** Its symbols (bound from its inputs, see `Executor.bind`). */
  readonly bindings: Bindings;
  /** Its own node overrides (e.g. its cache appends), taking precedence over the shared ones. */
  readonly overrides?: ReadonlyMap<number, NodeOverride>;
  /** Positions its sequence's cache holds before the run, when it has a paged cache. */
  readonly position?: number;
}

/** How a value lies in a batched run, as planned at load time. */
type Layout =
  /** Known at load time, the same for every segment. */
  | { readonly kind: "same" }
  /** One tensor stacking every segment's rows along `axis`. */
  | { readonly kind: "rows"; readonly axis: number }
  /** One tensor per segment; `axis`, when known, is where they can be stacked. */
  | { readonly kind: "parts"; readonly axis: number | null };

/** How a step runs: once over the stacked rows, or once per segment. */
type Mode =
  | {
    readonly kind: "rows";
    readonly axis: number;
    /** Reshape-like steps: the output shape, with the rows' axis set at run time. */
    readonly shape: readonly number[] | null;
  }
  | { readonly kind: "each" };

/** How a step runs, and what it does with last rows. */
interface StepPlan {
  readonly mode: Mode;
  /** It feeds only last rows: it runs on each segment's last row. */
  readonly last: boolean;
  /** A slice that keeps each segment's last row along this axis: picked without the op. */
  readonly takesLast: number | null;
}

const SAME: Layout = { kind: "same" };

/** Sample bindings of the symbols, to compare symbolic dims by value. */
function sampleBindings(symbols: readonly string[]): Bindings[] {
  const primes = [[3, 5, 7, 11, 13], [17, 19, 23, 29, 31]];
  return primes.map((p) => new Map(symbols.map((s, i) => [s, p[i % p.length]! + 2 * i])));
}

/** The axis of `shape` that is exactly the symbol `token`, when there is one only. */
function tokenAxis(shape: readonly Dim[], token: string): number | null {
  const at = shape.flatMap((d, i) => (symbolOf(d) === token ? [i] : []));
  return at.length === 1 ? at[0]! : null;
}

/**
 * The batched run order of an executor's steps: which run once over the stacked rows, and
 * where each value's rows lie. Built once per executor and token input.
 */
export class BatchPlan {
  readonly executor: Executor;
  readonly #steps: StepPlan[];
  /** Steps whose values pass through the rows layout (for the run's stacking). */
  readonly #layouts = new Map<number, Layout>();
  readonly #tokenInput: string;
  readonly #replay = new BatchReplay<Value>();
  /** The executor's constants, which a recorded value may hold (see `valueLayouts`). */
  #constantTensors: ReadonlySet<Tensor> | null = null;

  /**
   * @param executor the compiled graph
   * @param tokenInput the graph input holding the new tokens (stacked along its only symbolic axis)
   * @param perSequence nodes that always run once per segment (e.g. the cache appends)
   * @param lastRows outputs of which only each segment's last row is read (e.g. the logits)
   */
  constructor(
    executor: Executor,
    tokenInput: string,
    perSequence: ReadonlySet<number>,
    lastRows: ReadonlySet<number> = new Set(),
  ) {
    this.executor = executor;
    this.#tokenInput = tokenInput;
    const model = executor.model;
    const input = model.input(tokenInput);
    if (!input) throw new RangeError(`The graph has no input '${tokenInput}'`);
    const axes = input.fact.shape.flatMap((d, i) => (symbolOf(d) !== null ? [i] : []));
    if (axes.length !== 1) {
      throw new RangeError(
        `Token input '${tokenInput}' needs exactly one symbolic axis to stack sequences along`,
      );
    }
    const token = symbolOf(input.fact.shape[axes[0]!]!)!;
    const samples = sampleBindings(model.symbols);
    const layouts = this.#layouts;
    const layoutOf = (id: number): Layout => {
      if (executor.constant(id)) return SAME;
      return layouts.get(id) ?? { kind: "parts", axis: null };
    };
    for (const io of model.inputs) {
      layouts.set(
        io.id,
        io.name === tokenInput
          ? { kind: "rows", axis: axes[0]! }
          : { kind: "parts", axis: tokenAxis(io.fact.shape, token) },
      );
    }
    const rowContext = {
      model,
      ints: (node: Node, name: string): number[] | null => {
        const a = node.args.get(name);
        if (a?.kind !== "attr") return null;
        const v = resolveAttr(a.value, () => null);
        const flat = Array.isArray(v) ? v.flat(4) : [v];
        return flat.every((x) => typeof x === "number") ? flat as number[] : null;
      },
    };
    const modes = executor.steps.map((step): Mode => {
      if (step.kind === "dims") {
        layouts.set(step.id, { kind: "parts", axis: null });
        return { kind: "each" };
      }
      if (step.kind === "alias") {
        layouts.set(step.id, layoutOf(step.from));
        return { kind: "each" };
      }
      const node = step.node;
      const reads = step.kind === "fused" ? step.call.inputs : tensorReads(step);
      const inAxes = new Map<number, RowAxis>();
      let stackable = !perSequence.has(node.id);
      for (const id of reads) {
        const l = layoutOf(id);
        if (l.kind === "same") inAxes.set(id, "same");
        else if (l.axis === null) stackable = false;
        else inAxes.set(id, l.axis);
      }
      const reshapeLike = step.kind === "node" && step.view !== null;
      if (step.kind === "node" && !reshapeLike) {
        for (const [, t] of step.dynamic) {
          if (templateWires(t as AttrTemplate).some((id) => layoutOf(id).kind !== "same")) {
            stackable = false;
          }
        }
      }
      let axis: number | null = null;
      if (stackable && inAxes.size > 0) {
        axis = step.kind === "fused"
          ? step.call.rowAxis?.(step.call.inputs.map((id) => inAxes.get(id)!)) ?? null
          : rowAxisOf(rowContext, node, inAxes, samples);
      }
      const outs = node.outputs;
      if (axis !== null && step.kind === "node" && step.perm !== null) {
        // A transpose that moves the rows behind other axes would leave each segment a
        // strided slice, copied by every reader; per segment it only relabels the shape.
        const shape = model.values[outs[0]!]!.fact.shape;
        if (shape.slice(0, axis).some((d) => d !== 1)) axis = null;
      }
      if (axis !== null && (step.kind === "fused" || outs.length === 1)) {
        layouts.set(outs[0]!, { kind: "rows", axis });
        const shape = reshapeLike
          ? model.values[outs[0]!]!.fact.shape.map((d) => (typeof d === "number" ? d : 0))
          : null;
        return { kind: "rows", axis, shape };
      }
      // Per segment: the parts stack where the token symbol is, else where the input's rows were.
      const from = reads.map(layoutOf).find((l) => l.kind !== "same" && l.axis !== null);
      for (const id of step.kind === "fused" ? [outs[0]!] : outs) {
        const shape = model.values[id]!.fact.shape;
        let at = tokenAxis(shape, token);
        if (at === null && from && from.kind !== "same" && from.axis! < shape.length) {
          const source = reads.find((r) => layoutOf(r) === from)!;
          if (model.values[source]!.fact.shape.length === shape.length) at = from.axis;
        }
        layouts.set(id, { kind: "parts", axis: at });
      }
      return { kind: "each" };
    });
    const dims = new Map<number, readonly Dim[]>();
    for (const step of executor.steps) if (step.kind === "dims") dims.set(step.id, step.dims);
    const takesLast = executor.steps.map((step) => {
      if (step.kind !== "node") return null;
      const input = step.node.args.get("input");
      if (input?.kind !== "tensor") return null;
      const l = layoutOf(input.id);
      if (l.kind === "same" || l.axis === null) return null;
      const shape = model.values[input.id]!.fact.shape;
      const wire = (id: number) => dims.get(id) ?? null;
      return takesLastRow(step, l.axis, shape, samples, wire) ? l.axis : null;
    });
    const last = planLastRows(executor, modes, takesLast, lastRows);
    this.#steps = modes.map((mode, i) => ({ mode, last: last[i]!, takesLast: takesLast[i]! }));
  }

  /** Steps that run on each segment's last row only. */
  get lastRowSteps(): number {
    return this.#steps.filter((p) => p.last).length;
  }

  /** The axis value `id` is planned to stack its rows along, or null. */
  axisOf(id: number): number | null {
    const l = this.#layouts.get(id);
    return l === undefined || l.kind === "same" ? null : l.axis;
  }

  /** The token input's name. */
  get tokenInput(): string {
    return this.#tokenInput;
  }

  /** Steps that run once for the whole batch (the rest run once per segment). */
  get batchedSteps(): number {
    return this.#steps.filter((p) => p.mode.kind === "rows").length;
  }

  /**
   * Runs `segments` through the graph, waiting per step for weights still arriving; returns,
   * per segment, the graph's outputs by value id (row-major or strided views).
   */
  async run(
    segments: readonly Segment[],
    shared: ReadonlyMap<number, NodeOverride>,
    kernels: Kernels | null,
    pause?: Pause,
    replay = true,
  ): Promise<Map<number, Tensor>[]> {
    if (segments.length === 0) return [];
    const arena = kernels?.openRun() ?? null;
    const replaying = replay ? this.#replayOf(segments, kernels, arena) : null;
    try {
      const run = new BatchRun(this, segments, shared, kernels, arena, replaying?.mode);
      const steps = this.executor.steps;
      for (let i = 0; i < steps.length;) {
        const pending = this.executor.pendingAt(i);
        if (pending) await pending;
        i = run.step(i, this.#steps[i]!);
        const paused = pause?.();
        if (paused) await paused;
      }
      const outputs = run.finish();
      if (replaying?.mode instanceof Recording) {
        // A value's last rows are kept under -1 - id (see `BatchRun.#keyed`).
        const released = (j: number) =>
          this.executor.releasedAfter(j).flatMap((id) => [id, -1 - id]);
        this.#replay.recorded(replaying.composition, replaying.mode, released);
      }
      return outputs;
    } finally {
      if (replaying?.mode instanceof Recording) replaying.mode.stop();
      arena?.close();
    }
  }

  /** Steps a run of `tokens` new tokens per sequence at `threads` threads replays (see `replay.ts`). */
  replayedSteps(threads: number, tokens: readonly number[]): number {
    return this.#replay.replayedSteps(composition(threads, tokens));
  }

  /** How a run of `segments` goes: recorded, replayed, or neither (null). */
  #replayOf(segments: readonly Segment[], kernels: Kernels | null, arena: RunArena | null) {
    if (!kernels || !arena || this.executor.waiting) return null;
    const tokens = segments.map((s) => volume(s.inputs.get(this.#tokenInput)?.shape ?? [0]));
    const key = composition(kernels.threads, tokens);
    this.#constantTensors ??= new Set(
      this.executor.model.values.flatMap((v) => this.executor.constant(v.id) ?? []),
    );
    // With as many new tokens in every sequence, each moves as far from one run to the next:
    // paged views are keyed relative to the first sequence's position (their guards check
    // that every sequence moved as far). Otherwise they are not keyed, and what reads them walks.
    const uniform = tokens.every((t) => t === tokens[0]);
    const position = uniform ? segments[0]!.position ?? null : null;
    const layouts = valueLayouts(arena, this.#constantTensors, position);
    const bindings = segments.map((s) => s.bindings);
    const mode = this.#replay.start(key, kernels, arena, bindings, layouts, position);
    return mode && { composition: key, mode };
  }

  /** As {@link run}, at once: every weight must have arrived. */
  runNow(
    segments: readonly Segment[],
    shared: ReadonlyMap<number, NodeOverride>,
    kernels: Kernels | null,
  ): Map<number, Tensor>[] {
    if (segments.length === 0) return [];
    this.executor.assertArrived("run the batch with run(), which waits");
    const steps = this.executor.steps;
    const arena = kernels?.openRun() ?? null;
    try {
      const run = new BatchRun(this, segments, shared, kernels, arena);
      for (let i = 0; i < steps.length; i++) run.step(i, this.#steps[i]!);
      return run.finish();
    } finally {
      arena?.close();
    }
  }
}

/**
 * Which of `executor`'s steps feed only last rows: walking back from the outputs, a rows step
 * qualifies when every reader of its output takes only last rows (an output in `lastRows`, a
 * slice that keeps the last row, or a rows step that qualifies itself).
 */
function planLastRows(
  executor: Executor,
  modes: readonly Mode[],
  takesLast: readonly (number | null)[],
  lastRows: ReadonlySet<number>,
): boolean[] {
  const steps = executor.steps;
  const whole = new Set<number>();
  const last = new Set<number>();
  for (const o of executor.model.outputs) (lastRows.has(o.id) ? last : whole).add(o.id);
  const lastOnly = steps.map(() => false);
  for (let i = steps.length - 1; i >= 0; i--) {
    const step = steps[i]!;
    if (step.kind === "dims") continue;
    if (step.kind === "alias") {
      whole.add(step.from);
      continue;
    }
    if (takesLast[i] !== null) {
      last.add(tensorReads(step as NodeStep)[0]!);
      continue;
    }
    const out = step.node.outputs[0]!;
    const only = modes[i]!.kind === "rows" && last.has(out) && !whole.has(out);
    lastOnly[i] = only;
    const reads = step.kind === "fused" ? step.call.inputs : tensorReads(step);
    for (const id of reads) (only ? last : whole).add(id);
    if (step.kind === "node") {
      for (const [, t] of step.dynamic) for (const id of templateWires(t)) whole.add(id);
    }
  }
  return lastOnly;
}

/**
 * True when `step` is a slice along `axis` only that keeps the last row of its input (of
 * shape `shape`) whatever the bindings: its bounds, constants or dims (`wire`), evaluated
 * with each of `samples`, give the window [rows - 1, rows).
 */
function takesLastRow(
  step: NodeStep,
  axis: number,
  shape: readonly Dim[],
  samples: readonly Bindings[],
  wire: (id: number) => readonly Dim[] | null,
): boolean {
  if (step.node.name !== "slice" || step.node.outputs.length !== 1) return false;
  const fixed = new Map(step.fixed);
  const dynamic = new Map(step.dynamic);
  const axes = fixed.get("axes");
  const stride = fixed.get("stride") ?? [];
  if (
    !Array.isArray(axes) || axes.length !== 1 ||
    (axes[0] !== axis && axes[0] !== axis - shape.length)
  ) {
    return false;
  }
  if (!Array.isArray(stride) || stride.some((x) => x !== 1)) return false;
  return samples.every((bindings) => {
    /** A bound's value, and whether it is a constant (counted from the end when negative). */
    const bound = (name: string): [number, boolean] | null => {
      const known = fixed.get(name);
      if (known !== undefined) {
        const v = Array.isArray(known) ? known[0] : known;
        return typeof v === "number" ? [v, true] : null;
      }
      const t = dynamic.get(name);
      if (t === undefined) return null;
      let unknown = false;
      const v = resolveAttr(t, (id) => {
        const dims = wire(id);
        if (dims === null || dims.length !== 1) unknown = true;
        return unknown ? 0 : evalDim(dims![0]!, bindings);
      });
      const first = Array.isArray(v) ? v[0] : v;
      return unknown || typeof first !== "number" ? null : [first, false];
    };
    const [begin, end] = [bound("begin"), bound("end")];
    if (begin === null || end === null) return false;
    const rows = evalDim(shape[axis]!, bindings);
    const w = sliceWindow(rows, begin[0], end[0], 1, begin[1], end[1]);
    return w.begin === rows - 1 && w.count === 1;
  });
}

function tensorReads(step: NodeStep): number[] {
  return [...step.tensors.map(([, id]) => id), ...step.lists.flatMap(([, ids]) => ids)];
}

/** A value of a batched run: one stacked tensor, or one tensor per segment. */
type Value =
  | {
    readonly kind: "rows";
    readonly t: Tensor;
    readonly axis: number;
    /** Rows of each segment along `axis`. */
    readonly counts: readonly number[];
  }
  | { readonly kind: "parts"; readonly parts: readonly Tensor[] };

type Rows = Extract<Value, { kind: "rows" }>;

class BatchRun {
  readonly #plan: BatchPlan;
  readonly #segments: readonly Segment[];
  readonly #shared: ReadonlyMap<number, NodeOverride>;
  readonly #contexts: EvalContext[];
  readonly #values = new Map<number, Value>();
  /** The last row of each segment of a value, for the steps that read only those. */
  readonly #lasts = new Map<number, Rows>();
  readonly #arena: RunArena | null;
  readonly #place: Placement;
  /** Set while the run's steps are recorded. */
  readonly #recording: Recording<Value> | null;
  /** Set when the run replays recorded steps. */
  readonly #replaying: Replaying<Value> | null;
  /** The run's values and last rows, by one key each: a value's id, its last rows' `-1 - id`. */
  readonly #keyed: Values<Value> = {
    get: (k) => (k >= 0 ? this.#values.get(k) : this.#lasts.get(-1 - k)),
    set: (k, v) => void (k >= 0 ? this.#values.set(k, v) : this.#lasts.set(-1 - k, v as Rows)),
    delete: (k) => void (k >= 0 ? this.#values.delete(k) : this.#lasts.delete(-1 - k)),
  };

  constructor(
    plan: BatchPlan,
    segments: readonly Segment[],
    shared: ReadonlyMap<number, NodeOverride>,
    kernels: Kernels | null,
    arena: RunArena | null,
    replay: Recording<Value> | Replaying<Value> | null = null,
  ) {
    this.#plan = plan;
    this.#segments = segments;
    this.#shared = shared;
    this.#recording = replay instanceof Recording ? replay : null;
    this.#replaying = replay instanceof Replaying ? replay : null;
    const watched = this.#recording?.bindings;
    this.#contexts = segments.map((s, i) => ({
      bindings: watched?.[i] ?? s.bindings,
      kernels,
      arena,
    }));
    this.#arena = arena;
    // Stacks go to the run's arena, where the kernels that read them find them in place.
    this.#place = (n) => {
      const at = kernels && arena ? arena.alloc(n * 4) : null;
      if (at === null) return null;
      kernels!.noteHostWrite();
      return arena!.view(at, n);
    };
    arena?.collectWith(() => heldViews(this.#tensors()));
    const model = plan.executor.model;
    for (const io of model.inputs) {
      const parts = segments.map((s) => {
        const t = s.inputs.get(io.name);
        if (!t) throw new RangeError(`Missing input '${io.name}'`);
        return t;
      });
      this.#values.set(io.id, { kind: "parts", parts });
    }
  }

  #constant(id: number): Tensor | undefined {
    return this.#plan.executor.constant(id);
  }

  #set(id: number, v: Value): void {
    if (this.#plan.executor.isStaged(id)) {
      const ctx = this.#contexts[0]!;
      v = v.kind === "rows"
        ? { ...v, t: staged(v.t, ctx) }
        : { kind: "parts", parts: v.parts.map((t) => staged(t, ctx)) };
    }
    this.#values.set(id, v);
    this.#recording?.set(id, v);
  }

  #setLast(id: number, rows: Rows): void {
    this.#lasts.set(id, rows);
    this.#recording?.set(-1 - id, rows);
  }

  #value(id: number): Value {
    const v = this.#values.get(id);
    if (!v) {
      throw new RangeError(
        `Value ${this.#plan.executor.model.values[id]?.name ?? id} was not computed`,
      );
    }
    return v;
  }

  /** Segment `i`'s tensor of value `id`. */
  #part(id: number, i: number): Tensor {
    const c = this.#constant(id);
    if (c) return c;
    const v = this.#value(id);
    if (v.kind === "parts") return v.parts[i]!;
    let start = 0;
    for (let j = 0; j < i; j++) start += v.counts[j]!;
    return sliceRows(v.t, v.axis, start, v.counts[i]!);
  }

  /** Value `id` stacked along `axis`, or null when its parts cannot be (shapes differ). */
  #rows(id: number, axis: number): Rows | null {
    const v = this.#value(id);
    if (v.kind === "rows") return v.axis === axis ? v : null;
    const stacked = stackRows(v.parts, axis, this.#place);
    if (stacked) this.#set(id, stacked);
    return stacked;
  }

  /** A slice's output as the last rows of its input; false when they cannot be stacked. */
  #pickLast(step: NodeStep, axis: number): boolean {
    const rows = this.#lastRows(tensorReads(step)[0]!, axis);
    if (rows) this.#set(step.node.outputs[0]!, rows);
    return rows !== null;
  }

  /** The last row of each segment of value `id`, stacked along `axis` (null as {@link #rows}). */
  #lastRows(id: number, axis: number): Rows | null {
    const known = this.#lasts.get(id);
    if (known) return known.axis === axis ? known : null;
    const v = this.#value(id);
    if (v.kind === "rows") {
      if (v.axis !== axis) return null;
      if (v.counts.every((c) => c === 1)) return v;
    }
    const parts = v.kind === "rows" ? this.#segments.map((_, i) => this.#part(id, i)) : v.parts;
    if (parts.some((p) => axis >= p.shape.length)) return null;
    const lasts = parts.map((p) => sliceRows(p, axis, p.shape[axis]! - 1, 1));
    const rows: Rows | null = lasts.length === 1
      ? { kind: "rows", t: contiguous(lasts[0]!), axis, counts: [1] }
      : stackRows(lasts, axis, this.#place);
    if (rows) this.#setLast(id, rows);
    return rows;
  }

  /** Every tensor the live values hold. */
  *#tensors(): Iterable<Tensor> {
    for (const v of this.#values.values()) {
      if (v.kind === "rows") yield v.t;
      else yield* v.parts;
    }
    for (const v of this.#lasts.values()) yield v.t;
  }

  /** Runs step `i` as its plan says (or the replayed steps from it on); returns the next step. */
  step(i: number, { mode, last, takesLast }: StepPlan): number {
    const executor = this.#plan.executor;
    const step = executor.steps[i]!;
    const n = this.#segments.length;
    this.#arena?.step();
    if (this.#replaying) {
      const next = this.#replaying.replay(i, this.#keyed);
      if (next >= 0) return next;
    }
    const reads = this.#recording ? this.#reads(step) : null;
    this.#recording?.begin();
    if (step.kind === "alias") {
      const c = this.#constant(step.from);
      this.#set(
        step.id,
        c ? { kind: "parts", parts: new Array(n).fill(c) } : this.#value(step.from),
      );
    } else if (step.kind === "dims") {
      const parts = this.#contexts.map((ctx) => evalDims(executor.model, step, ctx.bindings));
      this.#set(step.id, { kind: "parts", parts });
    } else if (takesLast === null || !this.#pickLast(step as NodeStep, takesLast)) {
      if (mode.kind === "each" || (n === 1 && !last) || !this.#stacked(step, mode, last)) {
        this.#each(step);
      }
    }
    this.#recording?.end(i, reads!);
    this.#replaying?.check(i, this.#keyed);
    for (const id of executor.releasedAfter(i)) {
      this.#values.delete(id);
      this.#lasts.delete(id);
    }
    return i + 1;
  }

  /** What `step` reads, as the run holds it now: per id its value and its last rows, if any. */
  #reads(step: Step): Read<Value>[] {
    return this.#plan.executor.stepReads(step).flatMap((id, j): Read<Value>[] => {
      const standIn = step.kind === "fused" ? step.call.standIn?.(j) : undefined;
      const value = this.#values.get(id) ?? null;
      return [
        standIn ? [id, value, (v) => partsKey(v, standIn)] : [id, value],
        [-1 - id, this.#lasts.get(id) ?? null],
      ];
    });
  }

  #each(step: NodeStep | FusedStep): void {
    if (step.kind === "fused" && step.call.evalEach) {
      const inputs = this.#segments.map((_, i) => step.call.inputs.map((v) => this.#part(v, i)));
      let parts: Tensor[];
      try {
        parts = step.call.evalEach(inputs, this.#contexts);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        const Cls = e instanceof TypeError ? TypeError : RangeError;
        throw new Cls(`fused ${step.node.name} at ${step.node.where}: ${msg}`, { cause: e });
      }
      this.#set(step.node.outputs[0]!, { kind: "parts", parts });
      return;
    }
    const outs = step.kind === "fused" ? [step.node.outputs[0]!] : step.node.outputs;
    const parts: Tensor[][] = outs.map(() => []);
    this.#segments.forEach((segment, i) => {
      const override = segment.overrides?.get(step.node.id) ?? this.#shared.get(step.node.id);
      const results = evalStep(step, (id) => this.#part(id, i), this.#contexts[i]!, override);
      outs.forEach((_, k) => parts[k]!.push(results[k]!));
    });
    outs.forEach((id, k) => this.#set(id, { kind: "parts", parts: parts[k]! }));
  }

  /**
   * Runs `step` once over the stacked rows (`last`: each segment's last row); false when the
   * rows do not line up (then per segment).
   */
  #stacked(
    step: NodeStep | FusedStep,
    mode: Extract<Mode, { kind: "rows" }>,
    last: boolean,
  ): boolean {
    const reads = step.kind === "fused" ? step.call.inputs : tensorReads(step);
    const stacks = new Map<number, Tensor>();
    let counts: readonly number[] | null = null;
    for (const id of reads) {
      if (this.#constant(id)) continue;
      const planned = this.#plannedAxis(id);
      if (planned === null) return false;
      const v = last ? this.#lastRows(id, planned) : this.#rows(id, planned);
      if (!v || (counts !== null && !sameCounts(counts, v.counts))) return false;
      counts = v.counts;
      stacks.set(id, v.t);
    }
    if (counts === null) return false;
    const out = step.node.outputs[0]!;
    let t: Tensor;
    if (mode.shape !== null && step.kind === "node" && step.view !== null) {
      const x = stacks.get(step.view.from) ?? this.#constant(step.view.from)!;
      const shape = [...mode.shape];
      shape[mode.axis] = counts.reduce((a, b) => a + b, 0);
      if (volume(shape) !== volume(x.shape)) return false;
      t = { dtype: x.dtype, shape, data: contiguous(x).data };
    } else {
      const read = (id: number): Tensor => stacks.get(id) ?? this.#constant(id)!;
      t = evalStep(step, read, this.#contexts[0]!, this.#shared.get(step.node.id))[0]!;
    }
    const total = counts.reduce((a, b) => a + b, 0);
    if (t.shape[mode.axis] !== total) {
      throw new RangeError(
        `Batched ${step.node.name} at ${step.node.where} gave ${
          t.shape[mode.axis]
        } rows on axis ${mode.axis}, expected ${total}`,
      );
    }
    this.#set(out, { kind: "rows", t, axis: mode.axis, counts });
    return true;
  }

  /** The axis value `id` is planned to stack along (null: it cannot be). */
  #plannedAxis(id: number): number | null {
    const v = this.#values.get(id);
    if (v?.kind === "rows") return v.axis;
    return this.#plan.axisOf(id);
  }

  /** Per segment, the graph's outputs by value id, moved out of the run's arena. */
  finish(): Map<number, Tensor>[] {
    const model = this.#plan.executor.model;
    const outputs = this.#segments.map((_, i) => {
      const out = new Map<number, Tensor>();
      for (const o of model.outputs) out.set(o.id, this.#part(o.id, i));
      return out;
    });
    if (this.#arena) { for (const out of outputs) settle(out, this.#arena); }
    return outputs;
  }
}

/** What a batch replay keys its plans by: the thread count and each sequence's new tokens. */
function composition(threads: number, tokens: readonly number[]): string {
  return `${threads} ${tokens.join(",")}`;
}

/**
 * Where a batched run's values lie, for its recordings (`replay.ts`): each tensor as one
 * sequence's run has it (`tensorLayouts`), paged views relative to `position`, the first
 * sequence's (none without it).
 */
function valueLayouts(
  arena: RunArena,
  constants: ReadonlySet<Tensor>,
  position: number | null,
): Layouts<Value> {
  const one = tensorLayouts(arena, position);
  return {
    key: (v) => describe(v, (t) => (constants.has(t) ? "c" : one.key(t)), " "),
    items: (v) => describe(v, one.items, " | "),
    relative: (v) => v.kind === "parts" && v.parts.some(one.relative),
    moved: (v, by) =>
      by === 0 || !(v.kind === "parts" && v.parts.some(one.relative))
        ? v
        : { kind: "parts", parts: v.parts.map((t) => one.moved(t, by)) },
  };
}

/** `v` described tensor by tensor by `of`, its parts joined by `sep` (null when one is). */
function describe(v: Value, of: (t: Tensor) => string | null, sep: string): string | null {
  if (v.kind === "rows") {
    const d = of(v.t);
    return d === null ? null : `rows ${v.axis} ${v.counts.join(",")} ${d}`;
  }
  const ds = v.parts.map(of);
  return ds.includes(null) ? null : `parts ${ds.join(sep)}`;
}

/** A stand-in's key of each sequence's part of `v` (null for the stacked rows of several). */
function partsKey(v: Value, standIn: (t: Tensor) => string | null): string | null {
  return v.kind === "rows" && v.counts.length !== 1 ? null : describe(v, standIn, " ");
}

function sameCounts(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Rows [start, start + count) of `t` along `axis`: a view, copied only when it is strided and unit-leading is not. */
export function sliceRows(t: Tensor, axis: number, start: number, count: number): Tensor {
  const shape = [...t.shape];
  shape[axis] = count;
  if (!isStrided(t) && t.shape.slice(0, axis).every((d) => d === 1)) {
    const inner = volume(t.shape.slice(axis + 1));
    const data = t.data as Float32Array;
    return { dtype: t.dtype, shape, data: data.subarray(start * inner, (start + count) * inner) };
  }
  const strides = isStrided(t) ? t.strides : rowMajorStrides(t.shape);
  const offset = (isStrided(t) ? t.offset : 0) + start * strides[axis]!;
  const view: StridedTensor = { dtype: t.dtype, shape, data: t.data, strides, offset };
  return view;
}

/** Where a stack of `n` f32 items goes: a view in the kernels' memory, or null (a new array). */
type Placement = (n: number) => Float32Array | null;

/**
 * The parts concatenated along `axis`, or null when their other dims differ. When every part's
 * items lie with `axis` outermost (one row, or rows of tokens seen through a transpose), the
 * parts' items are concatenated as they lie and the stack is a view in that order; else the
 * stack is row-major.
 */
export function stackRows(
  parts: readonly Tensor[],
  axis: number,
  place: Placement = () => null,
): Rows | null {
  const first = parts[0]!;
  const rank = first.shape.length;
  if (axis >= rank) return null;
  for (const p of parts) {
    if (p.dtype !== first.dtype || p.shape.length !== rank) return null;
    for (let d = 0; d < rank; d++) if (d !== axis && p.shape[d] !== first.shape[d]) return null;
  }
  const counts = parts.map((p) => p.shape[axis]!);
  const total = counts.reduce((a, b) => a + b, 0);
  const shape = [...first.shape];
  shape[axis] = total;
  const items = parts.map((p) => itemsByRows(p, axis));
  const byRows = items.every((x) => x !== null);
  const strides = byRows ? rowsOuterStrides(shape, axis) : rowMajorStrides(shape);
  const n = volume(shape);
  let out = byRows ? adjacent(items) : null;
  if (!out) {
    out = (first.dtype === "f32" ? place(n) : null) ??
      tensor(first.dtype, [n]).data as Float32Array;
    if (byRows) {
      let at = 0;
      for (const x of items) {
        out.set(x!, at);
        at += x!.length;
      }
    } else {
      const outer = volume(first.shape.slice(0, axis));
      const inner = volume(first.shape.slice(axis + 1));
      let at = 0;
      for (const p of parts) {
        const src = contiguous(p).data as Float32Array;
        const block = p.shape[axis]! * inner;
        for (let o = 0; o < outer; o++) {
          out.set(src.subarray(o * block, (o + 1) * block), o * total * inner + at);
        }
        at += block;
      }
    }
  }
  return { kind: "rows", t: stridedView(first.dtype, shape, out, strides, 0), axis, counts };
}

/** One view over `items` when each lies right after the one before in the same memory. */
function adjacent(items: readonly (Float32Array | null)[]): Float32Array | null {
  const first = items[0]!;
  let end = first.byteOffset + first.byteLength;
  for (let i = 1; i < items.length; i++) {
    const x = items[i]!;
    if (x.buffer !== first.buffer || x.byteOffset !== end) return null;
    end += x.byteLength;
  }
  const C = first.constructor as new (b: ArrayBufferLike, o: number, n: number) => Float32Array;
  return new C(first.buffer, first.byteOffset, (end - first.byteOffset) / first.BYTES_PER_ELEMENT);
}

/** Strides of `shape` with `axis` outermost and the other axes row-major. */
function rowsOuterStrides(shape: readonly number[], axis: number): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (d === axis) continue;
    strides[d] = step;
    step *= shape[d]!;
  }
  strides[axis] = step;
  return strides;
}

/** The items of `t` in `rowsOuterStrides` order, when they lie that way: a view, or null. */
function itemsByRows(t: Tensor, axis: number): Float32Array | null {
  if (!ArrayBuffer.isView(t.data)) return null;
  const strides = isStrided(t) ? t.strides : rowMajorStrides(t.shape);
  const want = rowsOuterStrides(t.shape, axis);
  if (t.shape.some((d, i) => d !== 1 && strides[i] !== want[i])) return null;
  const offset = isStrided(t) ? t.offset : 0;
  return (t.data as Float32Array).subarray(offset, offset + volume(t.shape));
}
