/**
 * Which ops can run once over the rows of several sequences stacked along one axis.
 *
 * A batched step feeds the graph the new tokens of several sequences at once, stacked along
 * the token axis (`S`). An op whose every output row depends only on the same rows of its
 * inputs (element-wise ops, a `linear`, a norm over another axis, a reshape that keeps the
 * axis whole) gives, run once over the stack, exactly the stack of its per-sequence results;
 * any other op (attention, a slice or concat along the token axis, anything reading `P`) runs
 * once per sequence. This module says, per op, along which output axis the rows stay stacked,
 * from what is known at load time; the runtime checks the actual row counts before using it.
 */
import { type Bindings, type Dim, evalDim } from "../tensor/dim.ts";
import type { Graph, Node } from "./graph.ts";

/** Where one input's rows lie: the stacking axis, or "same" for a value shared by all rows. */
export type RowAxis = number | "same";

const UNARY = new Set([
  "abs",
  "ceil",
  "copy",
  "cos",
  "exp",
  "floor",
  "log",
  "log2",
  "neg",
  "not",
  "recip",
  "relu",
  "round",
  "rsqr",
  "rsqrt",
  "sigmoid",
  "sign",
  "sin",
  "sqr",
  "sqrt",
  "square",
  "tan",
  "tanh",
  "tract_core_cast",
  "tract_core_erf",
  "tract_core_gelu_approx",
  "tract_core_silu",
  "tract_transformers_silu",
]);

/** Element-wise ops with NNEF broadcasting (left-aligned: missing axes are trailing units). */
const BROADCAST = new Set([
  "add",
  "and",
  "clamp",
  "div",
  "eq",
  "ge",
  "gt",
  "le",
  "lt",
  "max",
  "min",
  "mul",
  "ne",
  "or",
  "pow",
  "select",
  "sub",
  "tract_transformers_apply_rope",
]);

/** Ops that reduce over `axes` and keep them as unit axes. */
const REDUCE = new Set([
  "all_reduce",
  "any_reduce",
  "argmax_reduce",
  "argmin_reduce",
  "max_reduce",
  "mean_reduce",
  "min_reduce",
  "sum_reduce",
  "tract_core_product_reduce",
  "softmax",
  "tract_core_softmax",
]);

const RESHAPES = new Set(["reshape", "unsqueeze", "squeeze"]);

/** What the rules read about a node besides its inputs' row axes. */
export interface RowContext {
  readonly model: Graph;
  /** The integer items of a fixed attribute, or null when absent or not fixed. */
  ints(node: Node, name: string): number[] | null;
}

function shapeOf(ctx: RowContext, id: number): readonly Dim[] {
  return ctx.model.values[id]!.fact.shape;
}

function tensorId(node: Node, name: string): number | null {
  const a = node.args.get(name);
  return a?.kind === "tensor" ? a.id : null;
}

/** The axis of the first input's rows when every input stacks rows there or is shared with a unit dim there. */
function broadcastAxis(
  ctx: RowContext,
  node: Node,
  axes: ReadonlyMap<number, RowAxis>,
): number | null {
  let axis: number | null = null;
  for (const a of axes.values()) {
    if (a === "same") continue;
    if (axis !== null && a !== axis) return null;
    axis = a;
  }
  if (axis === null) return null;
  for (const [id, a] of axes) {
    if (a !== "same") continue;
    const d = shapeOf(ctx, id)[axis];
    if (d !== undefined && d !== 1) return null;
  }
  const out = shapeOf(ctx, node.outputs[0]!);
  return axis < out.length ? axis : null;
}

/** The value of `d` under each sample binding (symbolic dims compare by their values). */
function samples(d: Dim, bindings: readonly Bindings[]): number[] | null {
  try {
    return bindings.map((b) => evalDim(d, b));
  } catch {
    return null;
  }
}

function product(dims: readonly Dim[], bindings: readonly Bindings[]): number[] | null {
  const out = bindings.map(() => 1);
  for (const d of dims) {
    const v = samples(d, bindings);
    if (!v) return null;
    v.forEach((x, i) => (out[i]! *= x));
  }
  return out;
}

function sameValues(a: number[] | null, b: number[] | null): boolean {
  return a !== null && b !== null && a.every((x, i) => x === b[i]);
}

/**
 * For a reshape of `input` (rows along `axis`) to `output`: the output axis holding the same
 * rows whole, with the same volume before and after it, else null. The other output dims must
 * be numbers, so that the batched output shape is known once the row count is.
 */
export function reshapeRowAxis(
  input: readonly Dim[],
  output: readonly Dim[],
  axis: number,
  bindings: readonly Bindings[],
): number | null {
  const before = product(input.slice(0, axis), bindings);
  const size = samples(input[axis]!, bindings);
  const after = product(input.slice(axis + 1), bindings);
  for (let b = 0; b < output.length; b++) {
    if (!sameValues(product(output.slice(0, b), bindings), before)) continue;
    if (!sameValues(samples(output[b]!, bindings), size)) continue;
    if (!sameValues(product(output.slice(b + 1), bindings), after)) continue;
    if (output.every((d, j) => j === b || typeof d === "number")) return b;
  }
  return null;
}

/**
 * The output axis along which `node`'s rows stay stacked when its tensor inputs stack rows
 * along `axes` (by value id), or null when it must run once per sequence. `bindings` are two
 * or more sample bindings of the model's symbols, to compare symbolic dims.
 */
export function rowAxisOf(
  ctx: RowContext,
  node: Node,
  axes: ReadonlyMap<number, RowAxis>,
  bindings: readonly Bindings[],
): number | null {
  const name = node.name;
  if (node.outputs.length !== 1) return null;
  const outRank = shapeOf(ctx, node.outputs[0]!).length;
  const input = tensorId(node, "input") ?? tensorId(node, "x");
  const inAxis = input === null ? undefined : axes.get(input);
  if (UNARY.has(name)) return typeof inAxis === "number" && inAxis < outRank ? inAxis : null;
  if (BROADCAST.has(name)) return broadcastAxis(ctx, node, axes);
  if (name === "concat") return concatRowAxis(ctx, node, axes);
  if (name === "tract_core_gather") return gatherAxis(ctx, node, axes);
  if (name === "matmul") return matmulAxis(ctx, node, axes);
  if (typeof inAxis !== "number") return null;
  const rank = shapeOf(ctx, input!).length;
  if (REDUCE.has(name)) {
    const reduced = (ctx.ints(node, "axes") ?? []).map((a) => (a < 0 ? a + rank : a));
    return ctx.ints(node, "axes") !== null && !reduced.includes(inAxis) ? inAxis : null;
  }
  if (name === "tract_core_rms_norm" || name === "tract_transformers_rms_norm") {
    const a = ctx.ints(node, "axis")?.[0];
    return a !== undefined && (a < 0 ? a + rank : a) !== inAxis ? inAxis : null;
  }
  if (name === "linear") {
    const filter = tensorId(node, "filter");
    const bias = tensorId(node, "bias");
    const shared = (id: number | null) => id === null || axes.get(id) === "same";
    if (!shared(filter) || !shared(bias) || inAxis >= rank - 1) return null;
    const b = bias === null ? undefined : shapeOf(ctx, bias)[inAxis];
    return b === undefined || b === 1 ? inAxis : null;
  }
  if (RESHAPES.has(name)) {
    return reshapeRowAxis(shapeOf(ctx, input!), shapeOf(ctx, node.outputs[0]!), inAxis, bindings);
  }
  if (name === "transpose") {
    const perm = ctx.ints(node, "axes");
    if (!perm) return null;
    const full = perm.map((a) => (a < 0 ? a + rank : a));
    for (let i = full.length; i < rank; i++) full.push(i);
    const at = full.indexOf(inAxis);
    return at >= 0 ? at : null;
  }
  if (name === "slice") {
    const sliced = ctx.ints(node, "axes");
    if (!sliced || ctx.ints(node, "begin") === null || ctx.ints(node, "end") === null) return null;
    return sliced.map((a) => (a < 0 ? a + rank : a)).includes(inAxis) ? null : inAxis;
  }
  return null;
}

/** concat along another axis than the rows'. */
function concatRowAxis(
  ctx: RowContext,
  node: Node,
  axes: ReadonlyMap<number, RowAxis>,
): number | null {
  const values = node.args.get("values");
  const at = ctx.ints(node, "axis")?.[0];
  if (values?.kind !== "tensors" || at === undefined) return null;
  const rank = shapeOf(ctx, node.outputs[0]!).length;
  const first = axes.get(values.ids[0]!);
  if (typeof first !== "number") return null;
  if (!values.ids.every((id) => axes.get(id) === first)) return null;
  return (at < 0 ? at + rank : at) === first ? null : first;
}

/** gather(data shared, indices stacked along a): the rows land at axis + a. */
function gatherAxis(
  ctx: RowContext,
  node: Node,
  axes: ReadonlyMap<number, RowAxis>,
): number | null {
  const data = tensorId(node, "input");
  const indices = tensorId(node, "indices");
  const a = indices === null ? undefined : axes.get(indices);
  const at = ctx.ints(node, "axis")?.[0];
  if (data === null || axes.get(data) !== "same" || typeof a !== "number" || at === undefined) {
    return null;
  }
  const rank = shapeOf(ctx, data).length;
  return (at < 0 ? at + rank : at) + a;
}

/** matmul(A stacked along a row axis but its last, B shared), A not transposed, same rank as the output. */
function matmulAxis(
  ctx: RowContext,
  node: Node,
  axes: ReadonlyMap<number, RowAxis>,
): number | null {
  const a = tensorId(node, "A");
  const b = tensorId(node, "B");
  const ta = node.args.get("transposeA");
  if (a === null || b === null || axes.get(b) !== "same") return null;
  if (ta?.kind === "attr" && ta.value === true) return null;
  const axis = axes.get(a);
  const rank = shapeOf(ctx, a).length;
  const out = shapeOf(ctx, node.outputs[0]!).length;
  return typeof axis === "number" && axis < rank - 1 && rank === out ? axis : null;
}
