/**
 * A generation session over a loaded model: prefill a prompt, then decode token by token,
 * with the KV cache owned by the runtime.
 *
 * How the cache works: at load, every graph input `in_cache_*` whose symbolic shape holds
 * the past symbol (P) on some axis is paired with the graph output produced by
 * `concat([in_cache_*, new], axis)`. The session keeps one buffer per pair, laid out like the
 * tensor but with a capacity instead of P on that axis (grown geometrically, copied only
 * when it grows). Each step feeds a strided view of the first P rows as `in_cache_*`, and the
 * concat node is replaced by an append of the S new rows into the buffer, whose result is
 * a strided view of P+S rows. Ops that read views (shape_of, unsqueeze, tile: the GQA
 * repeat that feeds attention) read the buffer in place; any other reader gets a copy.
 *
 * The graph is compiled once per model, on its first session, and shared by the others
 * (`fuseGraph`: RMSNorm, RoPE, SiLU gate and attention become fused calls; the fused
 * attention reads the cache view per kv head, without the repeat copy). With WASM kernels,
 * the cache buffers live in the kernels' memory, so the attention kernel reads them in
 * place, and linears run there too.
 */
import { strides as rowMajorStrides, type Tensor, tensor, volume } from "../tensor/tensor.ts";
import type { DType } from "../tensor/dtype.ts";
import { type GraphIO, type Model, throughIdentities } from "../graph/model.ts";
import { Executor, type NodeOverride, plainExecutor } from "../graph/executor.ts";
import { checkAssertion, evalDim, symbolOf } from "../graph/dim.ts";
import { contiguous, type StridedTensor } from "../ops/common.ts";
import type { Kernels } from "../../kernels/mod.ts";
import { kernelLinears } from "../graph/kernel_linear.ts";
import { fuseGraph } from "../graph/fuse.ts";
import { sharedKernels } from "./shared_kernels.ts";

/** A KV-cache input/output pair recognised in the graph. */
export interface CachePair {
  readonly input: string;
  readonly output: string;
  /** The axis that grows (the past symbol's axis). */
  readonly axis: number;
  /** The concat node turned into an append. */
  readonly node: number;
}

/** Options of {@link createSession}. */
export interface SessionOptions {
  /** Initial cache capacity in positions (default 64; grows by doubling). */
  readonly capacity?: number;
  /**
   * Append new rows into runtime-owned cache buffers (default true). False runs the graph as
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

class CacheBuffer {
  readonly pair: CachePair;
  /** Shape with P replaced by the capacity. */
  shape: number[];
  #data: Float32Array;
  /** Byte offset of the buffer in the kernels' memory, when it lives there. */
  #offset = -1;
  /** Items of the buffer (a detached view reads as empty). */
  #items = 0;
  readonly #kernels: Kernels | null;

  readonly dtype: DType;

  constructor(
    pair: CachePair,
    dtype: DType,
    dims: readonly number[],
    capacity: number,
    kernels: Kernels | null,
  ) {
    if (dtype !== "f32" && dtype !== "f16") {
      throw new TypeError(`KV cache '${pair.input}' has item type ${dtype}, expected f32 or f16`);
    }
    this.pair = pair;
    this.dtype = dtype;
    this.#kernels = kernels;
    this.shape = [...dims];
    this.shape[pair.axis] = capacity;
    this.#data = this.#allocate(volume(this.shape));
  }

  #allocate(items: number): Float32Array {
    this.#items = items;
    if (!this.#kernels) return new Float32Array(items);
    // The old slot is not reused: the buffer doubles, so at most half the space is lost.
    this.#offset = this.#kernels.allocWeights(Math.max(items, 1) * 4).offset;
    return this.#kernels.f32(this.#offset, items);
  }

  /** The items (a fresh view when the kernels' memory has grown since). */
  get data(): Float32Array {
    if (this.#kernels && this.#data.buffer !== this.#kernels.memory.buffer) {
      this.#data = this.#kernels.f32(this.#offset, this.#items);
    }
    return this.#data;
  }

  get capacity(): number {
    return this.shape[this.pair.axis]!;
  }

  #outer(): number {
    return volume(this.shape.slice(0, this.pair.axis));
  }

  #inner(): number {
    return volume(this.shape.slice(this.pair.axis + 1));
  }

  /** A view of the first `rows` positions. */
  view(rows: number): StridedTensor {
    const strides = rowMajorStrides(this.shape);
    const shape = [...this.shape];
    shape[this.pair.axis] = rows;
    if (!this.#kernels) return { dtype: this.dtype, shape, data: this.data, strides, offset: 0 };
    // Readers may run after the memory grew (a kernel's scratch): read the items lazily.
    const items = (): Float32Array => this.data;
    return {
      dtype: this.dtype,
      shape,
      get data() {
        return items();
      },
      strides,
      offset: 0,
    };
  }

  /** Writes `rows` (shape like the view, `count` positions) at position `at`. */
  append(rows: Tensor, at: number): void {
    const count = rows.shape[this.pair.axis]!;
    if (at + count > this.capacity) this.#grow(Math.max(at + count, this.capacity * 2), at);
    const outer = this.#outer();
    const inner = this.#inner();
    const cap = this.capacity;
    const src = rows.data as Float32Array;
    const data = this.data;
    for (let o = 0; o < outer; o++) {
      data.set(
        src.subarray(o * count * inner, (o + 1) * count * inner),
        (o * cap + at) * inner,
      );
    }
  }

  #grow(capacity: number, used: number): void {
    const outer = this.#outer();
    const inner = this.#inner();
    const oldCap = this.capacity;
    this.shape[this.pair.axis] = capacity;
    const oldOffset = this.#offset;
    const oldLength = this.#items;
    const data = this.#allocate(outer * capacity * inner);
    const old = this.#kernels ? this.#kernels.f32(oldOffset, oldLength) : this.#data;
    this.#data = data;
    for (let o = 0; o < outer; o++) {
      data.set(
        old.subarray(o * oldCap * inner, (o * oldCap + used) * inner),
        o * capacity * inner,
      );
    }
  }
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
  readonly pastSymbol: string;
  readonly #model: Model;
  #fused: Executor | undefined;

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
    const first = this.pairs[0];
    this.pastSymbol = first ? symbolOf(model.input(first.input)!.fact.shape[first.axis]!)! : "P";
  }

  /** The graph compiled with the fused calls, or as exported (the one `Model.run` uses). */
  executor(fuse: boolean): Executor {
    if (!fuse) return plainExecutor(this.#model);
    return this.#fused ??= new Executor(this.#model, { fused: fuseGraph(this.#model).calls });
  }
}

const plans = new WeakMap<Model, ModelPlan>();

function planOf(model: Model): ModelPlan {
  let plan = plans.get(model);
  if (!plan) plans.set(model, plan = new ModelPlan(model));
  return plan;
}

/** Prefill/decode over one sequence; the KV cache lives in the session. */
export class Session {
  readonly model: Model;
  /** The compiled graph: shared by every session over the model, unless given. */
  readonly executor: Executor;
  readonly pairs: readonly CachePair[];
  readonly #tokens: GraphIO;
  readonly #logits: GraphIO;
  readonly #pastSymbol: string;
  readonly #appendInPlace: boolean;
  readonly #capacity: number;
  /** The kernel linears and the cache appends, built once: the same map serves every step. */
  readonly #overrides: ReadonlyMap<number, NodeOverride>;
  /** The kernels the session runs in, or null for the TS path. */
  readonly kernels: Kernels | null;
  readonly #adaptive: boolean;
  readonly #caches: readonly CacheBuffer[];
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
    this.#tokens = plan.tokens;
    this.#logits = plan.logits;
    this.#pastSymbol = plan.pastSymbol;
    this.#appendInPlace = options.appendInPlace ?? true;
    this.#capacity = Math.max(1, options.capacity ?? 64);
    this.kernels = options.kernels || null;
    if (model.kernelOnly && this.kernels !== model.weightKernels) {
      throw new TypeError(
        "This model's Q4_0 weights are interleaved in the kernels it was loaded into: run the session over those kernels",
      );
    }
    this.#adaptive = options.adaptiveThreads ?? true;
    const overrides = new Map(this.kernels ? kernelLinears(model, this.kernels) : []);
    const bindings = new Map([[this.#pastSymbol, 0]]);
    this.#caches = !this.#appendInPlace ? [] : this.pairs.map((pair) => {
      const fact = model.input(pair.input)!.fact;
      const dims = fact.shape.map((d) => evalDim(d, bindings));
      return new CacheBuffer(pair, fact.dtype, dims, this.#capacity, this.kernels);
    });
    for (const cache of this.#caches) {
      // Runs within a step, before `#complete` moves the position past the new rows.
      overrides.set(cache.pair.node, (args) => {
        const fresh = contiguous(args.tensors("values")[1]!); // (..., S, ...)
        cache.append(fresh, this.#position);
        return [cache.view(this.#position + fresh.shape[cache.pair.axis]!)];
      });
    }
    this.#overrides = overrides;
    this.reset();
  }

  /** Number of positions already in the cache (P). */
  get position(): number {
    return this.#position;
  }

  /** Forgets the sequence; keeps the cache buffers for reuse. */
  reset(): void {
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
    const bindings = this.#bindingsFor(count);
    try {
      for (const a of this.model.assertions) if (a.scenario === null) checkAssertion(a, bindings);
      return true;
    } catch {
      return false;
    }
  }

  #bindingsFor(count: number): Map<string, number> {
    const fact = this.#tokens.fact;
    const bindings = new Map([[this.#pastSymbol, this.#position]]);
    const length = this.pairs.length === 0 ? this.#position + count : count;
    for (const d of fact.shape) {
      const s = symbolOf(d);
      if (s !== null) bindings.set(s, length);
    }
    return bindings;
  }

  /** Runs the prompt `tokenIds` and returns the logits (vocab,) of its last position. */
  prefill(tokenIds: readonly number[]): Float32Array {
    return this.#step(tokenIds);
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

  #step(ids: readonly number[]): Float32Array {
    const run = this.#prepare(ids);
    const timed = this.#adaptive && this.kernels !== null;
    if (timed) this.kernels!.beginStep();
    const values = this.executor.runBound(run.inputs, run.bindings, run.overrides, this.kernels);
    if (timed) this.kernels!.endStep(ids.length);
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
    for (const cache of this.#caches) inputs.set(cache.pair.input, cache.view(this.#position));
    for (const [name, t] of this.#plain) inputs.set(name, t);
    const bindings = this.executor.bind(inputs);
    return { inputs, bindings, overrides: this.#overrides };
  }

  #complete(ids: readonly number[], values: Map<number, Tensor>): Float32Array {
    const P = this.#position;
    if (!this.#appendInPlace) {
      for (const pair of this.pairs) {
        this.#plain.set(pair.input, values.get(this.model.output(pair.output)!.id)!);
      }
    }
    this.#position = P + ids.length;
    if (this.pairs.length === 0) this.#history.push(...ids);
    const logits = values.get(this.#logits.id)!;
    const vocab = logits.shape[logits.shape.length - 1]!;
    const data = logits.data as Float32Array;
    return data.slice(data.length - vocab);
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
