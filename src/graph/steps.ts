/**
 * The steps a compiled graph runs: a node by its op (its arguments resolved once at compile
 * time), a fused call, a value evaluated from its dims, or an alias; and how one step is
 * evaluated on the values a run gives it.
 */
import { type Tensor, tensor } from "../tensor/tensor.ts";
import { Args, type ArgValue, type AttrValue } from "../ops/args.ts";
import { contiguous, isStrided } from "../ops/common.ts";
import type { EvalContext } from "../ops/op.ts";
import { keepsOrder } from "../ops/transpose.ts";
import { type Bindings, type Dim, dimSymbols, evalDim } from "../tensor/dim.ts";
import { type AttrTemplate, type Graph, type Node, resolveAttr } from "./graph.ts";
import type { RowAxis } from "./row_axes.ts";

/** Replaces the evaluation of one node (e.g. the KV-cache concat turned into an append). */
export type NodeOverride = (args: Args<Tensor>, ctx: EvalContext) => Tensor[];

/** A node run by its op (or an override). */
export interface NodeStep {
  /** Marks a node run by its op. */
  readonly kind: "node";
  /** The node. */
  readonly node: Node;
  /** Attributes without wires, resolved once. */
  readonly fixed: readonly (readonly [string, AttrValue])[];
  /** Tensor arguments by parameter name, as value ids. */
  readonly tensors: readonly (readonly [string, number])[];
  /** Tensor-list arguments by parameter name, as value ids. */
  readonly lists: readonly (readonly [string, readonly number[]])[];
  /** Attributes that read wires, resolved at each run. */
  readonly dynamic: readonly (readonly [string, AttrTemplate])[];
  /**
   * For reshape/unsqueeze/squeeze: the input id and the output's symbolic shape, so that a
   * row-major input is re-labelled with the evaluated shape without running the op.
   */
  readonly view: { readonly from: number; readonly shape: readonly Dim[] } | null;
  /** For a transpose with constant axes: the input id and the permutation. */
  readonly perm: { readonly from: number; readonly axes: readonly number[] } | null;
}

const VIEW_OPS = new Set(["reshape", "unsqueeze", "squeeze"]);

function hasWire(t: AttrTemplate): boolean {
  if (Array.isArray(t)) return t.some(hasWire);
  return t !== null && typeof t === "object" && "wire" in t;
}

/** True when `dims` name no symbol outside `known` (they evaluate once those are bound). */
/** True when every symbol of `dims` is in `known`. */
export function onlyKnown(dims: readonly Dim[], known: ReadonlySet<string>): boolean {
  return dims.every((d) => [...dimSymbols(d)].every((s) => known.has(s)));
}

export function compileNode(model: Graph, node: Node, known: ReadonlySet<string>): NodeStep {
  const fixed: [string, AttrValue][] = [];
  const tensors: [string, number][] = [];
  const lists: [string, readonly number[]][] = [];
  const dynamic: [string, AttrTemplate][] = [];
  for (const [k, a] of node.args) {
    if (a.kind === "tensor") tensors.push([k, a.id]);
    else if (a.kind === "tensors") lists.push([k, a.ids]);
    else if (hasWire(a.value)) dynamic.push([k, a.value]);
    else fixed.push([k, resolveAttr(a.value, () => null)]);
  }
  let view: NodeStep["view"] = null;
  const input = node.args.get("input");
  if (VIEW_OPS.has(node.name) && input?.kind === "tensor" && node.outputs.length === 1) {
    const shape = model.values[node.outputs[0]!]!.fact.shape;
    if (onlyKnown(shape, known)) {
      view = { from: input.id, shape };
    }
  }
  let perm: NodeStep["perm"] = null;
  const axes = fixed.find(([k]) => k === "axes")?.[1];
  if (node.name === "transpose" && input?.kind === "tensor" && Array.isArray(axes)) {
    const rank = model.values[input.id]!.fact.shape.length;
    const p = (axes as number[]).map((a) => (a < 0 ? a + rank : a));
    for (let i = p.length; i < rank; i++) p.push(i);
    if (new Set(p).size === rank && p.every((a) => Number.isInteger(a) && a >= 0 && a < rank)) {
      perm = { from: input.id, axes: p };
    }
  }
  return { kind: "node", node, fixed, tensors, lists, dynamic, view, perm };
}

/**
 * A fused kernel call standing for a subgraph (see `fuse.ts`): it computes the output of
 * node `node` from the values `inputs`, so the subgraph's inner nodes are pruned unless
 * something else reads them.
 */
export interface FusedCall {
  /** The node whose (single) output the call computes. */
  readonly node: number;
  /** Value ids read, in the order `eval` takes them. */
  readonly inputs: readonly number[];
  /**
   * Of `inputs`, those its kernels read from their memory, copied in by each call when they
   * lie elsewhere (absent: none).
   */
  readonly kernelReads?: readonly number[];
  /** Output from the inputs (which may be strided views). */
  eval(inputs: readonly Tensor[], ctx: EvalContext): Tensor;
  /**
   * For input `index`, a key of all that the call reads of it (absent: it reads the items):
   * what a replay of the step checks instead of where the input lies (see `replay.ts`).
   */
  standIn?(index: number): ((t: Tensor) => string | null) | undefined;
  /**
   * When the inputs stack the rows of several sequences along `axes` (one per input, "same"
   * for a shared one): the output axis the rows stay stacked along, or null when the call
   * must run once per sequence (absent: never batched).
   */
  rowAxis?(axes: readonly RowAxis[]): number | null;
  /**
   * The outputs of several sequences' calls, each as `eval` gives it alone, computed
   * together (absent: `eval` once per sequence).
   */
  evalEach?(inputs: readonly (readonly Tensor[])[], ctxs: readonly EvalContext[]): Tensor[];
}

/** A fused call standing for a subgraph. */
export interface FusedStep {
  /** Marks a fused call. */
  readonly kind: "fused";
  /** The node whose outputs it gives. */
  readonly node: Node;
  /** The call. */
  readonly call: FusedCall;
}

/** A value evaluated from its symbolic contents. */
export interface DimsStep {
  /** Marks a value evaluated from its dims. */
  readonly kind: "dims";
  /** The value id. */
  readonly id: number;
  /** Its contents, symbolic until bound. */
  readonly dims: readonly Dim[];
}

/** A value that is another one (identity casts and copies). */
export interface AliasStep {
  /** Marks an alias. */
  readonly kind: "alias";
  /** The value id. */
  readonly id: number;
  /** The value it stands for. */
  readonly from: number;
}

/** One compiled step of a run. */
export type Step = NodeStep | FusedStep | AliasStep | DimsStep;

/** The contents of a small tensor as an attribute value. */
function contents(t: Tensor): AttrValue {
  if (t.dtype === "string") {
    const s = t.data as string[];
    return t.shape.length === 0 ? s[0]! : [...s];
  }
  const c = contiguous(t);
  const items = Array.from(c.data as Float32Array);
  return t.shape.length === 0 ? items[0]! : items;
}

/** A value computed from the bound symbols alone (shape arithmetic). */
export function evalDims(model: Graph, step: DimsStep, bindings: Bindings): Tensor {
  const fact = model.values[step.id]!.fact;
  const t = tensor(fact.dtype, fact.shape as number[]);
  const data = t.data as Float64Array;
  for (let k = 0; k < step.dims.length; k++) data[k] = evalDim(step.dims[k]!, bindings);
  return t;
}

/**
 * Runs one node or fused step on the values `read` gives: its outputs, in the order of
 * `step.node.outputs` (a fused call computes the first).
 */
export function evalStep(
  step: NodeStep | FusedStep,
  read: (id: number) => Tensor,
  ctx: EvalContext,
  override?: NodeOverride,
): Tensor[] {
  const node = step.node;
  if (step.kind === "fused") {
    const ins = step.call.inputs.map(read);
    try {
      return [step.call.eval(ins, ctx)];
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const shapes = ins.map((t) => `[${t.shape.join(", ")}]`).join(", ");
      const Cls = e instanceof TypeError ? TypeError : RangeError;
      throw new Cls(`fused ${node.name} at ${node.where}: ${msg} (inputs ${shapes})`);
    }
  }
  if (step.view && !override) {
    const x = read(step.view.from);
    if (!isStrided(x)) {
      const shape = step.view.shape.map((d) =>
        typeof d === "number" ? d : evalDim(d, ctx.bindings)
      );
      return [{ dtype: x.dtype, shape, data: x.data }];
    }
  }
  if (step.perm && !override) {
    // A transpose moving only unit axes keeps the row-major order: relabel the shape.
    const x = read(step.perm.from);
    const axes = step.perm.axes;
    if (!isStrided(x) && keepsOrder(x.shape, axes)) {
      return [{ dtype: x.dtype, shape: axes.map((a) => x.shape[a]!), data: x.data }];
    }
  }
  const strided = node.op.acceptsStrided === true || override !== undefined;
  const tensorOf = (id: number): Tensor => (strided ? read(id) : contiguous(read(id)));
  const args = new Map<string, ArgValue<Tensor>>(step.fixed);
  for (const [k, id] of step.tensors) args.set(k, tensorOf(id));
  for (const [k, ids] of step.lists) args.set(k, ids.map(tensorOf));
  for (const [k, t] of step.dynamic) args.set(k, resolveAttr(t, (id) => contents(read(id))));
  const opArgs = new Args<Tensor>(node.name, args, node.known);
  try {
    return override ? override(opArgs, ctx) : node.op.eval(opArgs, ctx);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const shapes = [...args.entries()]
      .filter(([, v]) => typeof v === "object" && v !== null && "dtype" in v)
      .map(([k, v]) => `${k}: [${(v as Tensor).shape.join(", ")}]`)
      .join(", ");
    const Cls = e instanceof TypeError ? TypeError : RangeError;
    throw new Cls(`${node.name} at ${node.where}: ${msg} (inputs ${shapes})`, { cause: e });
  }
}
