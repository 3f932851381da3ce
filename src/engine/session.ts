/**
 * A generation session over a loaded model: prefill a prompt, then decode token by token,
 * with the KV cache owned by the runtime.
 *
 * How the cache works: at load, every graph input `in_cache_*` whose symbolic shape holds
 * the past symbol (P) on some axis is paired with the graph output produced by
 * `concat([in_cache_*, new], axis)`. The runtime keeps those tensors in a paged pool
 * (`kv_pool.ts`): fixed-size blocks, one block table per sequence. Each step feeds a view of
 * the first P positions as `in_cache_*`, and the concat node is replaced by a write of the S
 * new positions into the sequence's blocks, whose result is a view of P+S positions. The
 * fused attention reads such views in place; any other reader gets a gathered copy.
 *
 * The graph is compiled once per model, on its first session, and shared by the others
 * (`fuseGraph`: RMSNorm, RoPE, SiLU gate and attention become fused calls; the fused
 * attention reads query head h's kv head directly, without the grouped-query repeat). With
 * WASM kernels, the pool lives in the kernels' memory and linears run there too. Sessions
 * over one model and kernels can step together (`Session.step`): one pass of the graph for
 * all of them, each getting what it would have got alone.
 */
import { type Tensor, tensor } from "../tensor/tensor.ts";
import { type GraphIO, throughIdentities } from "../graph/graph.ts";
import type { Model } from "../graph/model.ts";
import { Executor, plainExecutor } from "../graph/executor.ts";
import type { NodeOverride } from "../graph/steps.ts";
import { checkAssertion } from "../tensor/dim_parse.ts";
import { evalDim, symbolOf } from "../tensor/dim.ts";
import { contiguous } from "../ops/common.ts";
import type { Kernels } from "../../kernels/mod.ts";
import { kernelLinears } from "../graph/kernel_linear.ts";
import { fuseGraph } from "../graph/fuse.ts";
import { BatchPlan, type Pause, type Segment } from "../graph/batch.ts";
import { StepReplay } from "../graph/replay.ts";
import { sharedKernels } from "./shared_kernels.ts";
import { copyF32 } from "../tensor/dtype.ts";
import {
  BlockTable,
  type CacheLayout,
  DEFAULT_BLOCK_SIZE,
  type KvItemType,
  KvPool,
} from "../scheduler/kv_pool.ts";

function sameLayouts(a: readonly CacheLayout[], b: readonly CacheLayout[]): boolean {
  return a.length === b.length &&
    a.every((l, i) => l.axis === b[i]!.axis && l.shape.join() === b[i]!.shape.join());
}

/** A KV-cache input/output pair recognised in the graph. */
export interface CachePair {
  /** The graph input that takes the cache (`in_cache_key_0`). */
  readonly input: string;
  /** The graph output that gives it back grown (`out_cache_key_0`). */
  readonly output: string;
  /** The axis that grows (the past symbol's axis). */
  readonly axis: number;
  /** The concat node turned into an append. */
  readonly node: number;
}

/** Options of {@link createSession}. */
export interface SessionOptions {
  /** Initial cache capacity in positions of a private pool (default 64; grows by doubling). */
  readonly capacity?: number;
  /**
   * The pool holding the cache (the scheduler's, shared by every sequence; blocks are
   * taken with `reserve`). Default: a private pool that grows as the sequence does.
   */
  readonly pool?: KvPool;
  /** Item type of a private pool's cache (default "f16"; "f32" for exact reference runs). */
  readonly kvItemType?: KvItemType;
  /**
   * Append new rows into the paged KV pool (default true). False runs the graph as
   * exported, concatenating the whole past at each step (the naive reference of the bench).
   */
  readonly appendInPlace?: boolean;
  /**
   * Run `linear` nodes with constant Q4_0/f32 weights and the fused ops in these WASM
   * kernels (weights are uploaded once; Q4_0 products use Q8_0 activations, so logits differ
   * slightly from the TS reference path). The caller owns the kernels and closes them.
   * `false` (or absent, for `new Session`) runs everything in TS; {@link createSession}
   * defaults to the process-wide kernels.
   */
  readonly kernels?: Kernels | false;
  /**
   * Replace the RMSNorm, RoPE, SiLU-gate and attention subgraphs by fused calls (default
   * true). False runs the graph node by node as exported.
   */
  readonly fuse?: boolean;
  /**
   * Let the kernels time each step and pick the thread count (default true). False keeps
   * `kernels.threads` as the caller set it.
   */
  readonly adaptiveThreads?: boolean;
  /**
   * Replay the graph steps that do the same kernel work at every step instead of walking them
   * again (see `graph/replay.ts`): in the session's one-token steps, and in the batched steps
   * (`Session.step`) whose first session has it. Default true; false walks them all.
   */
  readonly replay?: boolean;
  /**
   * Steps give the logits of every position they run, (count, vocab) row by row, instead of
   * the last position's alone: what the log-probabilities of a prompt's own tokens are read
   * from (default false).
   */
  readonly everyRow?: boolean;
}

/**
 * Finds the KV-cache pairs (the first value may pass through casts to its own type): a concat whose first value is a graph input with a symbolic
 * axis and whose result is a graph output.
 */
export function findCachePairs(model: Model): CachePair[] {
  const inputById = new Map(model.inputs.map((i) => [i.id, i]));
  const outputById = new Map(model.outputs.map((o) => [o.id, o]));
  const pairs: CachePair[] = [];
  for (const node of model.nodes) {
    if (node.name !== "concat") continue;
    const values = node.args.get("values");
    const axisArg = node.args.get("axis");
    if (values?.kind !== "tensors" || values.ids.length !== 2 || axisArg?.kind !== "attr") continue;
    const input = inputById.get(throughIdentities(model, values.ids[0]!));
    const output = outputById.get(node.outputs[0]!);
    if (!input || !output || typeof axisArg.value !== "number") continue;
    const rank = input.fact.shape.length;
    const axis = axisArg.value < 0 ? axisArg.value + rank : axisArg.value;
    const d = input.fact.shape[axis];
    if (d === undefined || symbolOf(d) === null) continue;
    pairs.push({ input: input.name, output: output.name, axis, node: node.id });
  }
  return pairs;
}

/**
 * What depends only on the model, built on its first session and shared by all the others
 * (load_service's pool makes one per concurrent request): the cache pairs, the token input and
 * logits output, and the compiled graphs. Each run keeps its values in its own map and each
 * session its caches, so sessions over one plan may run steps in any interleaving.
 */
class ModelPlan {
  readonly pairs: readonly CachePair[];
  readonly tokens: GraphIO;
  readonly logits: GraphIO;
  /** The symbol of the token input's axis (the tokens of a run). */
  readonly tokenSymbol: string | null;
  /** The logits have a row per token run (an axis of `tokenSymbol`). */
  readonly rowsOfLogits: boolean;
  readonly pastSymbol: string;
  /** The cache tensors as the pool stores them (0 positions on the past axis). */
  readonly layouts: readonly CacheLayout[];
  readonly #model: Model;
  #fused: Executor | undefined;
  readonly #batchPlans = new WeakMap<Executor, BatchPlan>();
  readonly #everyRowPlans = new WeakMap<Executor, BatchPlan>();

  constructor(model: Model) {
    this.#model = model;
    this.pairs = findCachePairs(model);
    const cacheInputs = new Set(this.pairs.map((p) => p.input));
    const cacheOutputs = new Set(this.pairs.map((p) => p.output));
    const tokenInputs = model.inputs.filter((i) => !cacheInputs.has(i.name));
    if (tokenInputs.length !== 1) {
      throw new TypeError(
        `A session needs one token input besides the caches, the graph has ${tokenInputs.length}: ${
          tokenInputs.map((i) => i.name).join(", ")
        }`,
      );
    }
    this.tokens = tokenInputs[0]!;
    const logits = model.outputs.filter((o) => !cacheOutputs.has(o.name));
    if (logits.length < 1) throw new TypeError("The graph has no logits output");
    this.logits = logits.find((o) => o.name === "outputs") ?? logits[0]!;
    this.tokenSymbol = this.tokens.fact.shape.map(symbolOf).find((s) => s !== null) ?? null;
    this.rowsOfLogits = this.tokenSymbol !== null &&
      this.logits.fact.shape.some((d) => symbolOf(d) === this.tokenSymbol);
    const first = this.pairs[0];
    this.pastSymbol = first ? symbolOf(model.input(first.input)!.fact.shape[first.axis]!)! : "P";
    const bindings = new Map([[this.pastSymbol, 0]]);
    this.layouts = this.pairs.map((pair) => {
      const fact = model.input(pair.input)!.fact;
      if (fact.dtype !== "f32" && fact.dtype !== "f16") {
        throw new TypeError(
          `KV cache '${pair.input}' has item type ${fact.dtype}, expected f32 or f16`,
        );
      }
      return { shape: fact.shape.map((d) => evalDim(d, bindings)), axis: pair.axis };
    });
  }

  /** The graph compiled with the fused calls, or as exported (the one `Model.run` uses). */
  executor(fuse: boolean): Executor {
    if (!fuse) return plainExecutor(this.#model);
    return this.#fused ??= new Executor(this.#model, { fused: fuseGraph(this.#model).calls });
  }

  /**
   * How `executor` runs several tokens of one or more sequences in one pass (the cache appends
   * once per sequence, the logits of each one's last token only, or with `everyRow` of every
   * token).
   */
  batchPlan(executor: Executor, everyRow = false): BatchPlan {
    const plans = everyRow ? this.#everyRowPlans : this.#batchPlans;
    let plan = plans.get(executor);
    if (!plan) {
      const appends = new Set(this.pairs.map((p) => p.node));
      const logits = new Set(everyRow ? [] : [this.logits.id]);
      plan = new BatchPlan(executor, this.tokens.name, appends, logits);
      plans.set(executor, plan);
    }
    return plan;
  }
}

const plans = new WeakMap<Model, ModelPlan>();

function planOf(model: Model): ModelPlan {
  let plan = plans.get(model);
  if (!plan) plans.set(model, plan = new ModelPlan(model));
  return plan;
}

/**
 * True when a sequence of `model` at position `position` can take `count` more tokens by the
 * graph's assertions (e.g. `S+P < 512`).
 */
function satisfies(model: Model, position: number, count: number): boolean {
  const plan = planOf(model);
  const bindings = new Map([[plan.pastSymbol, position]]);
  // Without a KV cache in the graph, every step runs the whole sequence again.
  const length = plan.pairs.length === 0 ? position + count : count;
  for (const d of plan.tokens.fact.shape) {
    const s = symbolOf(d);
    if (s !== null) bindings.set(s, length);
  }
  try {
    for (const a of model.assertions) if (a.scenario === null) checkAssertion(a, bindings);
    return true;
  } catch {
    return false;
  }
}

/**
 * The most positions one sequence of `model` can hold by its graph's assertions, searched up
 * to `ceiling` (returned when the graph sets no bound below it).
 */
export function fittingPositions(model: Model, ceiling: number): number {
  if (satisfies(model, 0, ceiling)) return ceiling;
  let lo = 0;
  let hi = ceiling;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (satisfies(model, 0, mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The output of `model` a session reads its logits from. */
export function logitsOutput(model: Model): GraphIO {
  return planOf(model).logits;
}

/** The symbol of the axis along which `model` takes the tokens of a run (S), if it has one. */
export function tokenSymbol(model: Model): string | null {
  return planOf(model).tokenSymbol;
}

/** True when `model`'s logits have a row per token run (see `SessionOptions.everyRow`). */
export function rowsOfLogits(model: Model): boolean {
  return planOf(model).rowsOfLogits;
}

/** The KV pool layouts of `model`'s cache tensors (what a shared pool is built from). */
export function cacheLayouts(model: Model): readonly CacheLayout[] {
  return planOf(model).layouts;
}

/**
 * Prefill/decode over one sequence; its KV cache lives in blocks of a pool.
 *
 * @example
 * ```ts ignore
 * const model = await loadModel("stories260K.nnef.tgz");
 * const session = new Session(model, { capacity: 64 });
 * let logits = session.prefill([1, 403, 407]);
 * for (let i = 0; i < 8; i++) {
 *   const next = logits.indexOf(Math.max(...logits));
 *   logits = session.decode(next);
 * }
 * ```
 */
export class Session {
  /** The model it runs. */
  readonly model: Model;
  /** The compiled graph: shared by every session over the model, unless given. */
  readonly executor: Executor;
  /** The KV-cache pairs of the graph. */
  readonly pairs: readonly CachePair[];
  /** Steps give the logits of every position they run (see `SessionOptions.everyRow`). */
  readonly everyRow: boolean;
  readonly #tokens: GraphIO;
  readonly #logits: GraphIO;
  readonly #pastSymbol: string;
  readonly #appendInPlace: boolean;
  /** The pool holding this sequence's cache (null for the naive path). */
  readonly pool: KvPool | null;
  readonly #ownsPool: boolean;
  /** The sequence's blocks, in position order (null without a pool). */
  readonly #table: BlockTable | null;
  /** The kernel linears and the cache appends, built once: the same map serves every step. */
  readonly #overrides: ReadonlyMap<number, NodeOverride>;
  /** The kernel linears alone (shared by every session over the model and kernels). */
  readonly #sharedOverrides: ReadonlyMap<number, NodeOverride>;
  /** The cache appends alone (this session's own). */
  readonly #cacheOverrides = new Map<number, NodeOverride>();
  readonly #plan: ModelPlan;
  /** The kernels the session runs in, or null for the TS path. */
  readonly kernels: Kernels | null;
  readonly #adaptive: boolean;
  /** Recorded one-token steps, with kernels and unless `options.replay` is false. */
  readonly #replay: StepReplay | null;
  /** Full cache tensors of the naive path. */
  #plain = new Map<string, Tensor>();
  #position = 0;
  /** The tokens so far, for graphs without a KV cache. */
  #history: number[] = [];

  /**
   * A session over `model`: runs the graph fused (unless `options.fuse` is false), compiled
   * once per model and shared with its other sessions, and, with `options.kernels`, uploads
   * the weights to the kernels (once per model and kernels). `executor` replaces the
   * compiled graph (e.g. one with other fusions).
   */
  constructor(model: Model, options: SessionOptions = {}, executor?: Executor) {
    this.model = model;
    const plan = planOf(model);
    this.executor = executor ?? plan.executor(options.fuse !== false);
    this.pairs = plan.pairs;
    this.everyRow = options.everyRow ?? false;
    if (this.everyRow && !plan.rowsOfLogits) {
      throw new TypeError(
        `The graph's output '${plan.logits.name}' holds the last position alone, not one row per token: it cannot give every position's`,
      );
    }
    this.#tokens = plan.tokens;
    this.#logits = plan.logits;
    this.#pastSymbol = plan.pastSymbol;
    this.#appendInPlace = options.appendInPlace ?? true;
    this.kernels = options.kernels || null;
    if (model.kernelOnly && this.kernels !== model.weightKernels) {
      throw new TypeError(
        "This model's Q4_0 weights are interleaved in the kernels it was loaded into: run the session over those kernels",
      );
    }
    this.#adaptive = options.adaptiveThreads ?? true;
    this.#replay = this.kernels && options.replay !== false ? new StepReplay() : null;
    this.#plan = plan;
    this.#sharedOverrides = this.kernels ? kernelLinears(model, this.kernels) : new Map();
    const overrides = new Map(this.#sharedOverrides);
    this.#ownsPool = this.#appendInPlace && options.pool === undefined && this.pairs.length > 0;
    if (!this.#appendInPlace || this.pairs.length === 0) this.pool = null;
    else if (options.pool) {
      if (!sameLayouts(options.pool.layouts, plan.layouts)) {
        throw new TypeError("The KV pool was built for another model's cache tensors");
      }
      if (options.pool.kernels !== this.kernels) {
        throw new TypeError("The KV pool lives in other kernels than the session runs in");
      }
      this.pool = options.pool;
    } else {
      this.pool = new KvPool(plan.layouts, {
        blocks: Math.ceil(Math.max(1, options.capacity ?? 64) / DEFAULT_BLOCK_SIZE),
        itemType: options.kvItemType ?? "f16",
        kernels: this.kernels,
        growable: true,
      });
    }
    this.#table = this.pool ? new BlockTable(this.pool) : null;
    this.pairs.forEach((pair, layout) => {
      if (!this.pool) return;
      // Runs within a step, before `#complete` moves the position past the new rows; the
      // blocks were taken before the run (`#prepare`).
      const append: NodeOverride = (args, ctx) => {
        const fresh = args.tensors("values")[1]!; // (..., S, ...)
        const end = this.#position + fresh.shape[pair.axis]!;
        this.pool!.write(layout, this.#table!, this.#position, fresh, ctx.arena);
        return [this.pool!.view(layout, this.#table!, end)];
      };
      overrides.set(pair.node, append);
      this.#cacheOverrides.set(pair.node, append);
    });
    this.#overrides = overrides;
    this.reset();
  }

  /** Number of positions already in the cache (P). */
  get position(): number {
    return this.#position;
  }

  /** The sequence's KV blocks, in position order. */
  get blocks(): readonly number[] {
    return this.#table?.ids ?? [];
  }

  /**
   * Takes blocks from the pool so that the cache holds `positions` positions; false (taking
   * none) when the pool has too few free blocks. A private pool grows instead.
   */
  reserve(positions: number): boolean {
    const pool = this.pool;
    const table = this.#table;
    if (!pool || !table) return true;
    const need = Math.ceil(positions / pool.blockSize) - table.ids.length;
    if (need <= 0) return true;
    if (pool.freeBlocks < need) {
      if (!this.#ownsPool) return false;
      pool.grow(pool.capacity + need);
    }
    for (let i = 0; i < need; i++) table.push(pool.allocate()!);
    return true;
  }

  /**
   * Starts the sequence from blocks of the pool that hold its first `positions` positions (a
   * cached prefix, or another session's sequence): references them and sets the position past
   * them. `positions` defaults to the blocks full.
   *
   * @throws {RangeError} when the session is not empty, or the blocks do not hold `positions`
   */
  adopt(blocks: readonly number[], positions?: number): void {
    const pool = this.pool;
    const table = this.#table;
    if (!pool || !table || this.#position !== 0 || table.ids.length !== 0) {
      throw new RangeError("Only an empty session over a pool can adopt cached blocks");
    }
    const held = positions ?? blocks.length * pool.blockSize;
    if (held < 0 || held > blocks.length * pool.blockSize) {
      throw new RangeError(`${blocks.length} blocks cannot hold ${held} positions`);
    }
    for (const b of blocks) {
      pool.retain(b);
      table.push(b);
    }
    this.#position = held;
  }

  /**
   * Forgets the positions from `positions` on (tokens fed as guesses that proved wrong); the
   * blocks stay taken, and the next step writes over them.
   *
   * @throws {RangeError} when `positions` is not between 0 and the position
   */
  truncate(positions: number): void {
    if (!Number.isInteger(positions) || positions < 0 || positions > this.#position) {
      throw new RangeError(
        `Cannot truncate a sequence of ${this.#position} positions to ${positions}`,
      );
    }
    if (!this.#appendInPlace && this.pairs.length > 0 && positions < this.#position) {
      throw new RangeError("A session without a KV pool cannot forget positions");
    }
    this.#position = positions;
    this.#history.length = Math.min(this.#history.length, positions);
  }

  #ensure(positions: number): void {
    if (!this.reserve(positions)) {
      throw new RangeError(
        `KV pool has no free block for position ${positions - 1}: reserve blocks before the step`,
      );
    }
  }

  /** Forgets the sequence and gives its blocks back to the pool. */
  reset(): void {
    for (const b of this.#table?.ids ?? []) this.pool!.release(b);
    this.#table?.clear();
    this.#position = 0;
    this.#history = [];
    this.#plain.clear();
    if (this.#appendInPlace) return;
    const bindings = new Map([[this.#pastSymbol, 0]]);
    for (const pair of this.pairs) {
      const fact = this.model.input(pair.input)!.fact;
      this.#plain.set(pair.input, tensor(fact.dtype, fact.shape.map((d) => evalDim(d, bindings))));
    }
  }

  /** True when `count` more tokens satisfy the graph's assertions (e.g. `S+P < 512`). */
  fits(count: number): boolean {
    return satisfies(this.model, this.#position, count);
  }

  /**
   * Runs the prompt `tokenIds` and returns the logits (vocab,) of its last position (with
   * `everyRow`, (count, vocab) of each of its positions).
   */
  prefill(tokenIds: readonly number[]): Float32Array {
    return this.#step(tokenIds);
  }

  /** Graph steps a one-token run replays at the current thread count (see `SessionOptions.replay`). */
  get replayedSteps(): number {
    return this.kernels ? this.#replay?.replayedSteps(this.kernels.threads) ?? 0 : 0;
  }

  /**
   * Graph steps a batched run (`Session.step`) replays at the current thread count when its
   * sequences bring `tokens` new tokens each, in that order.
   */
  replayedBatchSteps(tokens: readonly number[]): number {
    if (!this.kernels || !this.#replay) return 0;
    return this.#plan.batchPlan(this.executor, this.everyRow).replayedSteps(
      this.kernels.threads,
      tokens,
    );
  }

  /** Runs one token and returns the logits (vocab,) of the next position. */
  decode(token: number): Float32Array {
    return this.#step([token]);
  }

  /**
   * As {@link prefill}, but while the weights are still arriving each node waits for those it
   * reads (the first pass of a model from `loadModel` with `lazy`); `onStep(i, count)` is
   * called before each step of the graph.
   */
  prefillAsync(
    tokenIds: readonly number[],
    onStep?: (step: number, count: number) => void,
  ): Promise<Float32Array> {
    return this.#stepAsync(tokenIds, onStep);
  }

  /** As {@link decode}, waiting for weights still arriving (see {@link prefillAsync}). */
  decodeAsync(token: number): Promise<Float32Array> {
    return this.#stepAsync([token]);
  }

  /**
   * Runs one step of several sessions: each appends its `ids` and gets back the logits
   * (vocab,) of its last position (with `everyRow`, (count, vocab) of each), exactly as if it
   * had run alone. Those with the same compiled graph, kernels and `everyRow` run together,
   * the linears reading each weight once for all of them; such groups run one after the other.
   */
  static async step(
    work: readonly { readonly session: Session; readonly ids: readonly number[] }[],
    pause?: Pause,
  ): Promise<Float32Array[]> {
    const groups: number[][] = [];
    work.forEach(({ session }, i) => {
      const group = groups.find((g) => session.#stepsWith(work[g[0]!]!.session));
      if (group) group.push(i);
      else groups.push([i]);
    });
    if (groups.length === 1) return Session.#stepTogether(work, pause);
    const out: Float32Array[] = new Array(work.length);
    for (const at of groups) {
      const results = await Session.#stepTogether(at.map((i) => work[i]!), pause);
      at.forEach((i, k) => (out[i] = results[k]!));
    }
    return out;
  }

  /** True when this session can run in one pass with `other`. */
  #stepsWith(other: Session): boolean {
    return this.executor === other.executor && this.kernels === other.kernels &&
      this.everyRow === other.everyRow;
  }

  /** `step` over sessions that all step with the first. */
  static async #stepTogether(
    work: readonly { readonly session: Session; readonly ids: readonly number[] }[],
    pause?: Pause,
  ): Promise<Float32Array[]> {
    if (work.length === 0) return [];
    const first = work[0]!.session;
    if (work.length === 1 && !pause) return [await first.#stepAsync(work[0]!.ids)];
    const kernels = first.kernels;
    const timed = first.#adaptive && kernels !== null && !first.executor.waiting;
    const tokens = work.reduce((n, w) => n + w.ids.length, 0);
    if (timed) kernels!.beginStep(tokens);
    // The thread policy times the computation, not the pauses.
    let paused = 0;
    const timedPause: Pause | undefined = pause && (() => {
      const p = pause();
      if (!p) return null;
      const t = performance.now();
      return p.then(() => void (paused += performance.now() - t));
    });
    let outputs: Map<number, Tensor>[];
    if (work.length === 1 && work[0]!.ids.length === 1) {
      // One sequence: the executor's own walk, lighter than the batch plan's.
      const { inputs, bindings, overrides } = first.#prepare(work[0]!.ids);
      const run = first.executor.runBoundAsync(
        inputs,
        bindings,
        overrides,
        kernels,
        undefined,
        timedPause,
        first.#replay,
        first.#position,
      );
      outputs = [await run];
    } else {
      const segments: Segment[] = work.map(({ session, ids }) => {
        const { inputs, bindings } = session.#prepare(ids);
        return {
          inputs,
          bindings,
          overrides: session.#cacheOverrides,
          position: session.#position,
        };
      });
      const plan = first.#plan.batchPlan(first.executor, first.everyRow);
      const replay = first.#replay !== null;
      outputs = await plan.run(segments, first.#sharedOverrides, kernels, timedPause, replay);
    }
    if (timed) kernels!.endStep(paused);
    return work.map(({ session, ids }, i) => session.#complete(ids, outputs[i]!));
  }

  #step(ids: readonly number[]): Float32Array {
    const run = this.#prepare(ids);
    const timed = this.#adaptive && this.kernels !== null;
    if (timed) this.kernels!.beginStep(ids.length);
    let values: Map<number, Tensor>;
    if (ids.length === 1) {
      values = this.executor.runBound(
        run.inputs,
        run.bindings,
        run.overrides,
        this.kernels,
        this.#replay,
        this.#position,
      );
    } else {
      // Several tokens: the batch plan computes the logits of the last one only (unless every
      // row's are asked for).
      const segment = { ...run, overrides: this.#cacheOverrides };
      const plan = this.#plan.batchPlan(this.executor, this.everyRow);
      values = plan.runNow([segment], this.#sharedOverrides, this.kernels)[0]!;
    }
    if (timed) this.kernels!.endStep();
    return this.#complete(ids, values);
  }

  async #stepAsync(
    ids: readonly number[],
    onStep?: (step: number, count: number) => void,
  ): Promise<Float32Array> {
    if (!this.executor.waiting && !onStep) return this.#step(ids);
    const run = this.#prepare(ids);
    // Not timed for the thread policy: the step mostly waits for the network.
    const values = await this.executor.runBoundAsync(
      run.inputs,
      run.bindings,
      run.overrides,
      this.kernels,
      onStep,
    );
    return this.#complete(ids, values);
  }

  #prepare(ids: readonly number[]): {
    inputs: Map<string, Tensor>;
    bindings: Map<string, number>;
    overrides: ReadonlyMap<number, NodeOverride>;
  } {
    if (ids.length === 0) throw new RangeError("Cannot run an empty list of tokens");
    // Without a KV cache in the graph, every step runs the whole sequence again.
    const run = this.pairs.length === 0 ? [...this.#history, ...ids] : ids;
    const tokenFact = this.#tokens.fact;
    const shape = tokenFact.shape.map((d) => (typeof d === "number" ? d : run.length));
    const tokens = tensor(tokenFact.dtype, shape, Float64Array.from(run)); // (1, S)
    const inputs = new Map<string, Tensor>([[this.#tokens.name, tokens]]);
    if (this.pool) {
      // Blocks are taken before the run: a cache append then makes no write of its own into
      // the kernels' memory besides the rows it stores.
      this.#ensure(this.#position + ids.length);
      this.pairs.forEach((pair, layout) => {
        inputs.set(pair.input, this.pool!.view(layout, this.#table!, this.#position));
      });
    }
    for (const [name, t] of this.#plain) inputs.set(name, t);
    const bindings = this.executor.bind(inputs);
    return { inputs, bindings, overrides: this.#overrides };
  }

  #complete(ids: readonly number[], values: Map<number, Tensor>): Float32Array {
    const P = this.#position;
    if (!this.#appendInPlace) {
      for (const pair of this.pairs) {
        this.#plain.set(pair.input, contiguous(values.get(this.model.output(pair.output)!.id)!));
      }
    }
    this.#position = P + ids.length;
    if (this.pairs.length === 0) this.#history.push(...ids);
    const logits = contiguous(values.get(this.#logits.id)!);
    const size = logits.shape[logits.shape.length - 1]! * (this.everyRow ? ids.length : 1);
    const data = logits.data as Float32Array;
    // Computed by this run and settled out of the kernels' memory: the caller's alone.
    const own = this.executor.constant(this.#logits.id) === undefined &&
      !(data.buffer instanceof SharedArrayBuffer);
    return own && data.length === size ? data : copyF32(data.subarray(data.length - size));
  }
}

/**
 * A session over `model` (see {@link Session}) that runs in the kernels the model's weights
 * were loaded into, else the process-wide WASM kernels (loaded once, see
 * {@link sharedKernels}), unless `options.kernels` is given or `false`, or the kernels cannot
 * load here.
 */
export async function createSession(
  model: Model,
  options: SessionOptions = {},
): Promise<Session> {
  const kernels = options.kernels ?? model.weightKernels ?? await sharedKernels();
  // Weights loading into memory of their own are uploaded to other kernels once arrived.
  if (kernels && kernels !== model.weightKernels) await model.weightsReady;
  return new Session(model, { ...options, kernels: kernels ?? false });
}
