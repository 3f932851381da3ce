/**
 * The operator interface. An op is declared by its NNEF fragment signature (parameters,
 * types, defaults), infers output facts over symbolic dims at load time, and evaluates
 * concrete tensors at run time. The graph layer resolves arguments (named, positional,
 * defaults; wires or literals) and hands them to the op through {@link OpArgs}.
 */
import type { DType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Bindings, Dim } from "../tensor/dim.ts";
import type { Kernels, RunArena } from "../../kernels/mod.ts";

/** What is known about a value before any data is touched. */
export interface Fact {
  /** The item type. */
  readonly dtype: DType;
  /** The shape, possibly symbolic. */
  readonly shape: readonly Dim[];
  /** The contents when fully known at load time (weights, literals, folded constants). */
  readonly value?: Tensor;
  /**
   * The row-major contents of a small integer/tdim/bool value when known at load time,
   * possibly symbolic (the results of `tract_core_shape_of` and arithmetic on them).
   * Present only when the shape is concrete.
   */
  readonly dims?: readonly Dim[];
  /** A scalar literal, which takes the item type of the other operand of a binary op. */
  readonly weak?: boolean;
}

/**
 * Arguments of one invocation, by parameter name. `T` is {@link Fact} at load time and
 * `Tensor` at run time. Attribute accessors accept literals and wires alike: at load time a
 * wire's known contents are used (symbolic dims allowed in `dim`/`dims`), at run time its
 * tensor values.
 */
export interface OpArgs<T> {
  /** True when the argument was given or its declared default is not null/empty. */
  has(name: string): boolean;
  /** A tensor argument. */
  tensor(name: string): T;
  /** A tensor argument that may be absent (optional parameters such as sdpa's `mask`). */
  optionalTensor(name: string): T | null;
  /** A `tensor<?>[]` argument such as concat's `values`. */
  tensors(name: string): T[];
  /** An integer that may be symbolic at load time (a number at run time). */
  dim(name: string): Dim;
  /** A list of integers that may be symbolic at load time. */
  dims(name: string): Dim[];
  /** An integer that must be known at load time. */
  int(name: string): number;
  /** A list of integers that must be known at load time. */
  ints(name: string): number[];
  /** A scalar attribute. */
  float(name: string): number;
  /** A string attribute. */
  str(name: string): string;
  /** A logical attribute. */
  bool(name: string): boolean;
  /**
   * True when item `index` of attribute `name` was a number known at load time (a literal
   * or a folded constant), false when it was symbolic or computed from the inputs. tract
   * applies some rules (slice's negative bounds) to such constants only.
   */
  knownAtLoad(name: string, index: number): boolean;
}

/** Services the graph loader offers to `infer`. */
export interface InferContext {
  /** The tensor stored under `label` in the archive (`variable`). */
  variable(label: string, shape: readonly number[]): Tensor;
}

/** Services the executor offers to `eval`. */
export interface EvalContext {
  /** Values of the symbols for this run. */
  readonly bindings: Bindings;
  /** The WASM kernels of the session, when it runs with them (fused ops use them). */
  readonly kernels?: Kernels | null;
  /**
   * Where kernel ops of this run leave their results for the next ops to read in place
   * (see `Kernels.openRun`); without it each result is copied out of the kernels' memory.
   */
  readonly arena?: RunArena | null;
}

/** One operator: its NNEF declaration, shape rule and evaluation. */
export interface Op {
  /** NNEF fragment declaration, e.g. `fragment neg(x: tensor<scalar>) -> (y: tensor<scalar>)`. */
  readonly signature: string;
  /**
   * Output facts from input facts, over symbolic dims. Folds integer contents into
   * `dims` when it can (shape arithmetic).
   *
   * @throws {RangeError} when the input shapes are impossible for the op
   */
  infer(args: OpArgs<Fact>, ctx: InferContext): Fact[];
  /** Output tensors from input tensors, all with concrete shapes. */
  eval(args: OpArgs<Tensor>, ctx: EvalContext): Tensor[];
  /**
   * True when `eval` reads strided views (`StridedTensor`, e.g. the runtime-owned KV
   * cache) itself; other ops receive row-major copies.
   */
  readonly acceptsStrided?: boolean;
}

/** Name of an op: the fragment name in its signature. */
export function opName(op: Op): string {
  const m = /fragment\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(op.signature);
  return m ? m[1]! : "?";
}
