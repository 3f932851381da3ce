/**
 * The expanded graph's data: nodes (one op invocation each), the values they read and write
 * with what is known of them at load time, and the graph's inputs and outputs. The lowering
 * (`lower.ts`) writes it, the executor and the batch planner read it.
 */
import type { Fact, Op } from "../ops/op.ts";
import type { ArgValue, AttrValue } from "../ops/args.ts";
import type { Assertion } from "../tensor/dim_parse.ts";
import type { DimExpr } from "../tensor/dim.ts";

/** An attribute before resolution: literals, symbolic dims and references to wires. */
export type AttrTemplate =
  | number
  | string
  | boolean
  | null
  | DimExpr
  | { readonly wire: number }
  | readonly AttrTemplate[];

/** How one parameter of a node receives its argument. */
export type NodeArg =
  | { readonly kind: "tensor"; readonly id: number }
  | { readonly kind: "tensors"; readonly ids: readonly number[] }
  | { readonly kind: "attr"; readonly value: AttrTemplate };

/** The value ids an argument passes as tensors (none for an attribute). */
export function argTensorIds(a: NodeArg): readonly number[] {
  return a.kind === "tensor" ? [a.id] : a.kind === "tensors" ? a.ids : [];
}

/** Appends to `into` the value ids the attribute template `t` reads (its wires). */
export function templateWires(t: AttrTemplate, into: number[] = []): number[] {
  if (Array.isArray(t)) { for (const x of t) templateWires(x, into); }
  else if (t !== null && typeof t === "object" && "wire" in t) {
    into.push((t as { wire: number }).wire);
  }
  return into;
}

/** One op invocation of the expanded graph. */
export interface Node {
  /** Index in `Graph.nodes`. */
  readonly id: number;
  /** The op that runs it. */
  readonly op: Op;
  /** The op's NNEF name. */
  readonly name: string;
  /** The arguments by parameter name. */
  readonly args: ReadonlyMap<string, NodeArg>;
  /** Per attribute, which items were numbers known at load time (see `OpArgs.knownAtLoad`). */
  readonly known: ReadonlyMap<string, readonly boolean[]>;
  /** The ids of the values it writes. */
  readonly outputs: readonly number[];
  /** `graph.nnef:line` of the graph statement, with the fragment path when expanded. */
  readonly where: string;
}

/** A wire: one output of a node, with what is known about it at load time. */
export interface Value {
  /** Index in `Graph.values`. */
  readonly id: number;
  /** The first identifier the value was assigned to, if any. */
  name: string | null;
  /** What is known of it at load time (type, symbolic shape, contents when known). */
  readonly fact: Fact;
  /** The node that writes it, or null for a constant. */
  readonly producer: number | null;
}

/** A graph input or output, by name. */
export interface GraphIO {
  /** The name in the graph's declaration. */
  readonly name: string;
  /** The id of its value. */
  readonly id: number;
  /** What is known of it at load time. */
  readonly fact: Fact;
}
/** The structure of a loaded graph, as the executor and the planners read it. */
export interface Graph {
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
  /** The graph input of that name. */
  input(name: string): GraphIO | undefined;
  /** The graph output of that name. */
  output(name: string): GraphIO | undefined;
}

/** Resolves an attribute template with `lookup` for the wires it references. */
export function resolveAttr(
  template: AttrTemplate,
  lookup: (id: number) => AttrValue,
): AttrValue {
  if (Array.isArray(template)) return template.map((t) => resolveAttr(t, lookup));
  if (template !== null && typeof template === "object" && "wire" in template) {
    return lookup((template as { wire: number }).wire);
  }
  return template as AttrValue;
}
/**
 * A node's arguments as an op reads them: tensors through `tensorOf`, attribute templates
 * resolved with `contents` for the wires they reference.
 */
export function resolveArgs<T>(
  args: ReadonlyMap<string, NodeArg>,
  tensorOf: (id: number) => T,
  contents: (id: number) => AttrValue,
): Map<string, ArgValue<T>> {
  const out = new Map<string, ArgValue<T>>();
  for (const [k, a] of args) {
    if (a.kind === "tensor") out.set(k, tensorOf(a.id));
    else if (a.kind === "tensors") out.set(k, a.ids.map(tensorOf));
    else out.set(k, resolveAttr(a.value, contents));
  }
  return out;
}

/** The input of a cast to its own item type or a copy (a no-op at run time), else null. */
export function identityInput(model: Graph, node: Node): number | null {
  if (node.name !== "tract_core_cast" && node.name !== "copy") return null;
  const arg = node.args.get(node.name === "copy" ? "x" : "input");
  if (arg?.kind !== "tensor" || node.outputs.length !== 1) return null;
  const out = model.values[node.outputs[0]!]!.fact;
  return model.values[arg.id]!.fact.dtype === out.dtype ? arg.id : null;
}

/** The value `id` stands for, followed back through casts to its own type and copies. */
export function throughIdentities(model: Graph, id: number): number {
  for (;;) {
    const producer = model.values[id]!.producer;
    const from = producer === null ? null : identityInput(model, model.nodes[producer]!);
    if (from === null) return id;
    id = from;
  }
}
