/**
 * A loaded model: the expanded graph with its facts, and what its load did (weights still
 * arriving, the kernels holding them, the load's figures). `loadModel` (`load_model.ts`) and
 * `buildModel` (`build_model.ts`) make one.
 */
import type { Kernels } from "../../kernels/mod.ts";
import type { Q4Tuning } from "../../kernels/q4_tuning.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Assertion } from "../tensor/dim_parse.ts";
import { plainExecutor, type RunOptions } from "./executor.ts";
import type { Graph, GraphIO, Node, Value } from "./graph.ts";

/** What loading the weights took. */
export interface LoadStats {
  /** Members written (graph and weights). */
  readonly members: number;
  /** Bytes written into weight memory (each byte once). */
  readonly bytes: number;
  /** Milliseconds from the start of `loadModel` to the graph built. */
  readonly graphMs: number;
  /** Milliseconds from the start of `loadModel` to every weight in place (NaN until then). */
  readonly weightsMs: number;
  /**
   * How the kernels chose to run this model's Q4_0 weights once they were in place, and what
   * they measured; null when there was nothing to choose.
   */
  readonly q4Tuning: Q4Tuning | null;
}

/** A loaded model: the expanded graph with its facts, inputs, outputs and metadata. */
export class Model implements Graph {
  /** The nodes in execution order. */
  readonly nodes: readonly Node[];
  /** Every value by id. */
  readonly values: readonly Value[];
  /** The graph inputs, in declaration order. */
  readonly inputs: readonly GraphIO[];
  /** The graph outputs, in declaration order. */
  readonly outputs: readonly GraphIO[];
  /** Symbols declared with `extension tract_symbol`. */
  readonly symbols: readonly string[];
  /** `extension tract_assert` constraints; scenario ones apply only in their scenario. */
  readonly assertions: readonly Assertion[];
  /** The `tract_core_properties` fragment (t2n writes strings). */
  readonly properties: ReadonlyMap<string, string>;

  /** A model from its built parts (see `buildModel`). */
  constructor(parts: {
    nodes: readonly Node[];
    values: readonly Value[];
    inputs: readonly GraphIO[];
    outputs: readonly GraphIO[];
    symbols: readonly string[];
    assertions: readonly Assertion[];
    properties: ReadonlyMap<string, string>;
  }) {
    this.nodes = parts.nodes;
    this.values = parts.values;
    this.inputs = parts.inputs;
    this.outputs = parts.outputs;
    this.symbols = parts.symbols;
    this.assertions = parts.assertions;
    this.properties = parts.properties;
  }

  /**
   * A model over this one's weights with other nodes, values or outputs (a variant of its
   * graph): constants are shared, and so is what is known of their loading.
   */
  variant(parts: {
    nodes?: readonly Node[];
    values?: readonly Value[];
    outputs?: readonly GraphIO[];
  }): Model {
    const variant = new Model({ ...this, ...parts });
    variant.weightsReady = this.weightsReady;
    variant.weightKernels = this.weightKernels;
    variant.loadStats = this.loadStats;
    variant.kernelOnly = this.kernelOnly;
    return variant;
  }

  /** Resolves once every weight is in place (at once for a model built from tensors in memory). */
  weightsReady: Promise<void> = Promise.resolve();
  /** The kernels whose memory holds the large weights, or null (buffers of their own). */
  weightKernels: Kernels | null = null;
  /** What loading took, for a model from {@link loadModel}. */
  loadStats: LoadStats | null = null;
  /** True when some weights are laid out for the kernels only (interleaved Q4_0). */
  kernelOnly = false;

  /**
   * Runs the graph once as exported: binds the symbols from the input shapes, checks the
   * assertions (and those of `options.scenario`), and returns every graph output by name.
   * Caches are plain inputs/outputs here; {@link Session} keeps them in place instead.
   *
   * @throws {RangeError} an input of the wrong shape, a failed assertion, or an op failure
   */
  run(
    inputs: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>,
    options: RunOptions = {},
  ): Map<string, Tensor> {
    if (this.kernelOnly) {
      throw new TypeError(
        "This model's Q4_0 weights are interleaved for the kernels: run it in a session over them, or load it without kernels",
      );
    }
    const map = inputs instanceof Map ? inputs : new Map(Object.entries(inputs));
    return plainExecutor(this).run(map, options);
  }

  input(name: string): GraphIO | undefined {
    return this.inputs.find((i) => i.name === name);
  }

  output(name: string): GraphIO | undefined {
    return this.outputs.find((o) => o.name === name);
  }
}
