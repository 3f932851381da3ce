/**
 * Runs a loaded {@link Graph} with concrete tensors. Symbols are bound from the input shapes,
 * assertions are checked, then only the nodes that depend on the inputs run: constants were
 * folded at load time, and values whose contents are known symbolically (shape arithmetic)
 * are evaluated from their dims instead of running their op.
 */
import { type Tensor, volume } from "../tensor/tensor.ts";
import { copyF32, type DType, isFloat, isInteger } from "../tensor/dtype.ts";
import { contiguous } from "../ops/common.ts";
import type { EvalContext } from "../ops/op.ts";
import { type Bindings, dimToString, evalDim, shapeToString, symbolOf } from "../tensor/dim.ts";
import { checkAssertion } from "../tensor/dim_parse.ts";
import { argTensorIds, type Graph, identityInput, type Node, templateWires } from "./graph.ts";
import type { Kernels, RunArena } from "../../kernels/mod.ts";
import { isPaged } from "../tensor/paged.ts";
import { pendingWeight } from "./weights.ts";
import { type Read, Recording, Replaying, type StepReplay } from "./replay.ts";
import {
  compileNode,
  evalDims,
  evalStep,
  type FusedCall,
  type NodeOverride,
  onlyKnown,
  type Step,
} from "./steps.ts";

/**
 * Called between two steps of a run: a promise to wait for (e.g. a turn of the event loop,
 * so that a long run does not hold up the server), or null to go on at once.
 */
export type Pause = () => Promise<void> | null;

/** Options of one run. */
export interface RunOptions {
  /** Also enforce the `tract_assert` lines of this scenario (e.g. `tg`, `pp`). */
  readonly scenario?: string;
  /** Node id -> replacement evaluation. */
  readonly overrides?: ReadonlyMap<number, NodeOverride>;
}

/** Options of an {@link Executor}. */
export interface ExecutorOptions {
  /** Fused calls by the id of the node they replace (from `fuseGraph`). */
  readonly fused?: ReadonlyMap<number, FusedCall>;
}

/** Item types that can stand for one another as inputs: floats, integers, the rest. */
function kindOf(dtype: DType): string {
  if (isFloat(dtype)) return "float";
  if (isInteger(dtype)) return "integer";
  return dtype;
}

/** `t` copied into the run's arena when it is f32 held outside it (else `t` itself). */
export function staged(t: Tensor, { kernels, arena }: EvalContext): Tensor {
  if (!kernels || !arena || t.dtype !== "f32" || isPaged(t)) return t;
  const items = contiguous(t).data as Float32Array;
  if (arena.holds(items)) return t;
  const at = arena.alloc(items.length * 4);
  if (at === null) return t;
  kernels.noteHostWrite();
  const data = arena.view(at, items.length);
  data.set(items);
  return { dtype: "f32", shape: t.shape, data };
}

/**
 * The compiled run order of a model and the constants it starts from. A run's values live in
 * that run only: every session over the model shares one executor, stepping in any order.
 */
export class Executor {
  /** The graph it runs. */
  readonly model: Graph;
  #steps: Step[] = [];
  readonly #constants = new Map<number, Tensor>();
  /** Per step, the value ids that are no longer needed after it. */
  readonly #release: number[][] = [];

  /** Compiles the run order of `model`, with `options.fused` calls in place of their nodes. */
  constructor(model: Graph, options: ExecutorOptions = {}) {
    this.model = model;
    const fused = options.fused ?? new Map<number, FusedCall>();
    const known = new Set(model.symbols);
    const inputIds = new Set(model.inputs.map((i) => i.id));
    for (const v of model.values) {
      if (v.fact.value) this.#constants.set(v.id, v.fact.value);
    }
    for (const v of model.values) {
      if (v.producer === null && !v.fact.value && v.fact.dims && !inputIds.has(v.id)) {
        if (onlyKnown(v.fact.dims, known)) {
          this.#steps.push({ kind: "dims", id: v.id, dims: v.fact.dims });
        }
      }
    }
    for (const node of model.nodes) {
      if (node.outputs.every((o) => model.values[o]!.fact.value)) continue;
      if (inputIds.has(node.outputs[0]!)) continue;
      const facts = node.outputs.map((o) => model.values[o]!.fact);
      const from = identityInput(model, node);
      const call = fused.get(node.id);
      if (call) this.#steps.push({ kind: "fused", node, call });
      else if (facts.length === 1 && facts[0]!.dims && onlyKnown(facts[0]!.dims, known)) {
        this.#steps.push({ kind: "dims", id: node.outputs[0]!, dims: facts[0]!.dims });
      } else if (from !== null) {
        this.#steps.push({ kind: "alias", id: node.outputs[0]!, from });
      } else this.#steps.push(compileNode(model, node, known));
    }
    // Dead code: keep only the steps whose results are read at run time or are outputs
    // (most shape arithmetic was folded into dims at load time and is never read).
    const needed = new Set(model.outputs.map((o) => o.id));
    const kept: Step[] = [];
    for (let i = this.#steps.length - 1; i >= 0; i--) {
      const s = this.#steps[i]!;
      if (s.kind === "dims") {
        if (needed.has(s.id)) kept.push(s);
      } else if (s.kind === "alias") {
        if (needed.has(s.id)) {
          kept.push(s);
          needed.add(s.from);
        }
      } else if (s.node.outputs.some((o) => needed.has(o))) {
        kept.push(s);
        for (const id of this.stepReads(s)) needed.add(id);
      }
    }
    this.#steps = kept.reverse();
    // Liveness: release a value after its last reader, unless it is a graph output.
    const lastUse = new Map<number, number>();
    this.#steps.forEach((s, i) => {
      if (s.kind === "alias") lastUse.set(s.from, i);
      if (s.kind !== "node" && s.kind !== "fused") return;
      for (const id of this.stepReads(s)) lastUse.set(id, i);
    });
    const outputs = new Set(model.outputs.map((o) => o.id));
    this.#release = this.#steps.map(() => []);
    for (const [id, i] of lastUse) {
      if (!outputs.has(id) && !this.#constants.has(id)) this.#release[i]!.push(id);
    }
    // Weights still arriving: the first steps that read each of them wait for it.
    const waited = new Set<Tensor>();
    this.#waits = this.#steps.map((s) => {
      const reads = this.stepReads(s);
      const ts: Tensor[] = [];
      for (const id of reads) {
        const c = this.#constants.get(id);
        if (c && !waited.has(c) && pendingWeight(c)) {
          waited.add(c);
          ts.push(c);
        }
      }
      return ts.length > 0 ? ts : null;
    });
    this.#waiting = this.#waits.some((w) => w !== null);
    this.#staged = this.#stagedValues();
  }

  /**
   * f32 values computed in TS that the kernels of two or more fused steps read (RoPE's cos
   * and sin, read by every layer): a kernel run copies them into its arena once, where those
   * steps read them in place, so that they make no copy of their own and can be replayed.
   */
  #stagedValues(): Set<number> {
    const source = new Map<number, number>();
    for (const s of this.#steps) {
      if (s.kind === "alias") source.set(s.id, source.get(s.from) ?? s.from);
    }
    const readers = new Map<number, number>();
    for (const s of this.#steps) {
      if (s.kind !== "fused") continue;
      for (const id of new Set((s.call.kernelReads ?? []).map((i) => source.get(i) ?? i))) {
        readers.set(id, (readers.get(id) ?? 0) + 1);
      }
    }
    const staged = new Set<number>();
    for (const s of this.#steps) {
      if (s.kind !== "node") continue;
      for (const id of s.node.outputs) {
        if ((readers.get(id) ?? 0) >= 2 && this.model.values[id]!.fact.dtype === "f32") {
          staged.add(id);
        }
      }
    }
    return staged;
  }

  /** Value ids whose TS results a kernel run copies into its arena (see `#stagedValues`). */
  #staged: Set<number>;

  /** True when a kernel run copies value `id`, computed in TS, into its arena (see `staged`). */
  isStaged(id: number): boolean {
    return this.#staged.has(id);
  }

  /** Per step, the weights it reads that were still arriving when the executor was built. */
  #waits: (Tensor[] | null)[];
  #waiting: boolean;

  /** What step `i` must wait for before it runs, or null when its weights are all in. */
  #pendingAt(i: number): Promise<unknown> | null {
    const ts = this.#waits[i];
    if (!ts) return null;
    const ps: Promise<void>[] = [];
    for (const t of ts) {
      const p = pendingWeight(t);
      if (p) ps.push(p);
    }
    if (ps.length === 0) {
      this.#waits[i] = null;
      return null;
    }
    // `waiting` only asks whether there is one: a failed weight reaches the step that awaits it.
    const all = Promise.all(ps);
    all.catch(() => {});
    return all;
  }

  /** True while some weight read by the steps has not arrived. */
  get waiting(): boolean {
    if (!this.#waiting) return false;
    let any = false;
    for (let i = 0; i < this.#waits.length; i++) if (this.#pendingAt(i)) any = true;
    this.#waiting = any;
    return any;
  }

  /** The value ids step `s` reads (an alias its source, a dims step none). */
  stepReads(s: Step): readonly number[] {
    if (s.kind === "alias") return [s.from];
    if (s.kind === "dims") return [];
    return s.kind === "fused" ? s.call.inputs : this.#readIds(s.node);
  }

  #readIds(node: Node): number[] {
    const ids: number[] = [];
    for (const a of node.args.values()) {
      if (a.kind === "attr") templateWires(a.value, ids);
      else ids.push(...argTensorIds(a));
    }
    return ids;
  }

  /** Number of steps run per call (nodes and symbolic values), after folding and pruning. */
  get stepCount(): number {
    return this.#steps.length;
  }

  /**
   * Binds the symbols from the inputs' shapes and checks them against the input facts.
   *
   * @throws {RangeError} an input of the wrong rank or dims, or a failed assertion
   */
  bind(inputs: ReadonlyMap<string, Tensor>, scenario?: string): Map<string, number> {
    const bindings = new Map<string, number>();
    for (const io of this.model.inputs) {
      const t = inputs.get(io.name);
      if (!t) throw new RangeError(`Missing input '${io.name}'`);
      if (kindOf(t.dtype) !== kindOf(io.fact.dtype)) {
        throw new TypeError(
          `Input '${io.name}' has item type ${t.dtype}, the graph expects ${io.fact.dtype}`,
        );
      }
      if (t.shape.length !== io.fact.shape.length) {
        throw new RangeError(
          `Input '${io.name}' has shape [${t.shape.join(", ")}], the graph expects ${
            shapeToString(io.fact.shape)
          }`,
        );
      }
      io.fact.shape.forEach((d, i) => {
        const name = symbolOf(d);
        if (name !== null) {
          const prev = bindings.get(name);
          if (prev !== undefined && prev !== t.shape[i]) {
            throw new RangeError(
              `Input '${io.name}' gives ${name}=${t.shape[i]} but ${name}=${prev} elsewhere`,
            );
          }
          bindings.set(name, t.shape[i]!);
        }
      });
    }
    for (const io of this.model.inputs) {
      const t = inputs.get(io.name)!;
      io.fact.shape.forEach((d, i) => {
        let expected: number;
        try {
          expected = evalDim(d, bindings);
        } catch {
          return;
        }
        if (expected !== t.shape[i]) {
          throw new RangeError(
            `Input '${io.name}' has shape [${t.shape.join(", ")}], the graph expects ${
              shapeToString(io.fact.shape)
            } (axis ${i} should be ${expected} = ${dimToString(d)})`,
          );
        }
      });
    }
    for (const a of this.model.assertions) {
      if (a.scenario === null || a.scenario === scenario) checkAssertion(a, bindings);
    }
    return bindings;
  }

  /** Runs the graph; returns the outputs by name. */
  run(inputs: ReadonlyMap<string, Tensor>, options: RunOptions = {}): Map<string, Tensor> {
    const bindings = this.bind(inputs, options.scenario);
    const values = this.runBound(inputs, bindings, options.overrides);
    const out = new Map<string, Tensor>();
    for (const o of this.model.outputs) out.set(o.name, contiguous(values.get(o.id)!));
    return out;
  }

  /**
   * Runs with symbols already bound; returns every live value by id (outputs included). With
   * `replay` (one sequence's one-token runs, the sequence at `position`), steps are recorded,
   * then replayed (see `replay.ts`).
   */
  runBound(
    inputs: ReadonlyMap<string, Tensor>,
    bindings: Bindings,
    overrides?: ReadonlyMap<number, NodeOverride>,
    kernels?: Kernels | null,
    replay?: StepReplay | null,
    position = 0,
  ): Map<number, Tensor> {
    this.assertArrived("run the step with runBoundAsync");
    const run = this.#begin(inputs, bindings, kernels, replay, position);
    try {
      for (let i = 0; i < this.#steps.length;) i = this.#runStep(i, run, overrides);
      return this.#finish(run, replay);
    } finally {
      run.recording?.stop();
      run.ctx.arena?.close();
    }
  }

  /**
   * As {@link runBound}, but each step first waits for the weights it reads that have not
   * arrived yet; `onStep(i, count)` is called before step `i` runs, and `pause` after it.
   */
  async runBoundAsync(
    inputs: ReadonlyMap<string, Tensor>,
    bindings: Bindings,
    overrides?: ReadonlyMap<number, NodeOverride>,
    kernels?: Kernels | null,
    onStep?: (step: number, count: number) => void,
    pause?: Pause,
    replay?: StepReplay | null,
    position = 0,
  ): Promise<Map<number, Tensor>> {
    if (!this.waiting && !onStep && !pause) {
      return this.runBound(inputs, bindings, overrides, kernels, replay, position);
    }
    const run = this.#begin(inputs, bindings, kernels, this.waiting ? null : replay, position);
    try {
      for (let i = 0; i < this.#steps.length;) {
        const wait = this.#waiting ? this.#pendingAt(i) : null;
        if (wait) await wait;
        onStep?.(i, this.#steps.length);
        i = this.#runStep(i, run, overrides);
        const paused = pause?.();
        if (paused) await paused;
      }
      return this.#finish(run, replay);
    } finally {
      run.recording?.stop();
      run.ctx.arena?.close();
    }
  }

  #begin(
    inputs: ReadonlyMap<string, Tensor>,
    given: Bindings,
    kernels?: Kernels | null,
    replay?: StepReplay | null,
    position = 0,
  ): Run {
    // Constants are read from their own map (not copied into each run's values).
    const values = new Map<number, Tensor>();
    const constants = this.#constants;
    for (const io of this.model.inputs) values.set(io.id, inputs.get(io.name)!);
    const arena = kernels?.openRun() ?? null;
    const mode = replay && kernels && arena ? replay.start(kernels, arena, given, position) : null;
    const recording = mode instanceof Recording ? mode : null;
    const replaying = mode instanceof Replaying ? mode : null;
    const bindings = recording?.bindings[0] ?? given;
    const ctx: EvalContext = { bindings, kernels: kernels ?? null, arena };
    ctx.arena?.collectWith(() => heldViews(values.values()));
    const read = (id: number): Tensor => {
      const v = values.get(id) ?? constants.get(id);
      if (!v) throw new RangeError(`Value ${this.model.values[id]?.name ?? id} was not computed`);
      return v;
    };
    return { values, ctx, read, bindings, recording, replaying };
  }

  #finish({ values, ctx, recording }: Run, replay?: StepReplay | null): Map<number, Tensor> {
    if (recording) replay!.recorded(recording, (i) => this.#release[i]!);
    if (ctx.arena) settle(values, ctx.arena);
    for (const o of this.model.outputs) {
      const c = this.#constants.get(o.id);
      if (c && !values.has(o.id)) values.set(o.id, c);
    }
    return values;
  }

  /** Runs step `i` (or the replayed steps from it on); returns the next step to run. */
  #runStep(i: number, run: Run, overrides?: ReadonlyMap<number, NodeOverride>): number {
    const { values, ctx, read, bindings, recording, replaying } = run;
    const step = this.#steps[i]!;
    ctx.arena?.step();
    if (replaying) {
      const next = replaying.replay(i, values);
      if (next >= 0) return next;
    }
    if (step.kind === "alias") values.set(step.id, read(step.from));
    else if (step.kind === "dims") values.set(step.id, evalDims(this.model, step, bindings));
    else {
      const reads = recording && this.stepReads(step).map((id, j): Read<Tensor> => {
        const v = this.#constants.has(id) ? null : read(id);
        const standIn = step.kind === "fused" ? step.call.standIn?.(j) : undefined;
        return standIn ? [id, v, standIn] : [id, v];
      });
      recording?.begin();
      const outs = evalStep(step, read, ctx, overrides?.get(step.node.id));
      step.node.outputs.forEach((id, k) => {
        let t = outs[k];
        if (t && this.#staged.has(id)) t = staged(t, ctx);
        if (!t) return;
        values.set(id, t);
        recording?.set(id, t);
      });
      if (recording) recording.end(i, reads!);
      replaying?.check(i, values);
    }
    for (const id of this.#release[i]!) values.delete(id);
    return i + 1;
  }

  /**
   * Throws a RangeError naming the first step that reads a weight still arriving, if any;
   * `instead` says what the caller can do instead of waiting for them all.
   */
  assertArrived(instead: string): void {
    if (!this.waiting) return;
    const i = this.#waits.findIndex((w, k) => w !== null && this.#pendingAt(k) !== null);
    const node = this.#steps[i]!;
    const what = node.kind === "node" || node.kind === "fused" ? ` (${node.node.where})` : "";
    throw new RangeError(
      `Step ${i}${what} reads a weight that has not arrived yet: await model.weightsReady, or ${instead}`,
    );
  }

  /** The compiled steps, in run order. */
  get steps(): readonly Step[] {
    return this.#steps;
  }

  /** The value ids no longer read after step `i`. */
  releasedAfter(i: number): readonly number[] {
    return this.#release[i]!;
  }

  /** A value known at load time (weights, folded constants), or undefined. */
  constant(id: number): Tensor | undefined {
    return this.#constants.get(id);
  }

  /** What step `i` must wait for (weights still arriving), or null. */
  pendingAt(i: number): Promise<unknown> | null {
    return this.#waiting ? this.#pendingAt(i) : null;
  }
}

const plainExecutors = new WeakMap<Graph, Executor>();

/**
 * `model` compiled as exported (no fused calls), on first use, then shared: `Model.run` and
 * every session with `fuse: false` run this one.
 */
export function plainExecutor(model: Graph): Executor {
  let executor = plainExecutors.get(model);
  if (!executor) plainExecutors.set(model, executor = new Executor(model));
  return executor;
}

/** The typed arrays `tensors` hold: what a run arena keeps of them (`RunArena.collectWith`). */
export function* heldViews(tensors: Iterable<Tensor>): Iterable<ArrayBufferView> {
  // A paged cache view lies in the KV pool, and reading its `data` would gather a copy.
  for (const t of tensors) if (!isPaged(t) && ArrayBuffer.isView(t.data)) yield t.data;
}

/** Copies out of `arena` the values that lie there, before the run that holds it ends. */
export function settle(values: Map<number, Tensor>, arena: RunArena): void {
  for (const [id, t] of values) {
    if (!isPaged(t) && t.data instanceof Float32Array && arena.holds(t.data)) {
      values.set(id, { ...t, data: copyF32(t.data) });
    }
  }
}

interface Run {
  readonly values: Map<number, Tensor>;
  readonly ctx: EvalContext;
  readonly read: (id: number) => Tensor;
  readonly bindings: Bindings;
  /** Set when the run's steps are being recorded. */
  readonly recording: Recording<Tensor> | null;
  /** Set when the run replays recorded steps. */
  readonly replaying: Replaying<Tensor> | null;
}

/** Number of items of a tensor. */
export function itemCount(t: Tensor): number {
  return volume(t.shape);
}
