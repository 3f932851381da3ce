/**
 * Shape inference at load time: what an op's outputs will be (item type, symbolic shape, and
 * contents when known) from what is known of its inputs, before any data is touched.
 */
import type { Fact, InferContext, Op } from "../ops/op.ts";
import { Args, type AttrValue } from "../ops/args.ts";
import { volume } from "../tensor/tensor.ts";
import { shapeToString, sym } from "../tensor/dim.ts";
import { pendingWeight } from "./weights.ts";
import { type AttrTemplate, type NodeArg, resolveArgs, type Value } from "./graph.ts";

function fmtFact(f: Fact): string {
  return `${f.dtype}${shapeToString(f.shape)}`;
}

/** Known contents of a fact as attribute values, when small and known. */
export function factContents(f: Fact): AttrValue | undefined {
  if (f.dims) return f.shape.length === 0 ? f.dims[0]! : [...f.dims];
  const v = f.value;
  if (
    v && v.dtype !== "string" && v.dtype !== "q40" && volume(v.shape) <= 4096 &&
    pendingWeight(v) === undefined
  ) {
    const items = Array.from(v.data as Float32Array);
    const out = v.dtype === "bool" ? items.map((x) => x !== 0) : items;
    return v.shape.length === 0 ? out[0]! : out;
  }
  if (v && v.dtype === "string") {
    const items = v.data as string[];
    return v.shape.length === 0 ? items[0]! : [...items];
  }
  return undefined;
}
/** Per attribute of a node, which items are numbers known at load time (see `OpArgs.knownAtLoad`). */
export function knownItems(
  args: ReadonlyMap<string, NodeArg>,
  values: readonly Value[],
): Map<string, boolean[]> {
  const known = new Map<string, boolean[]>();
  function itemKnown(t: AttrTemplate): boolean {
    if (typeof t === "number") return true;
    if (t !== null && typeof t === "object" && "wire" in t) {
      const c = factContents(values[(t as { wire: number }).wire]!.fact);
      return typeof c === "number" ||
        (Array.isArray(c) && c.length === 1 && typeof c[0] === "number");
    }
    return false;
  }
  for (const [k, a] of args) {
    if (a.kind !== "attr") continue;
    known.set(k, Array.isArray(a.value) ? a.value.map(itemKnown) : [itemKnown(a.value)]);
  }
  return known;
}

/** The facts of a node's tensor inputs, for error messages: `x: f32[S,64], y: ...`. */
export function describeInputs(
  args: ReadonlyMap<string, NodeArg>,
  values: readonly Value[],
): string {
  return [...args.entries()]
    .flatMap(([k, a]) =>
      a.kind === "tensor"
        ? [`${k}: ${fmtFact(values[a.id]!.fact)}`]
        : a.kind === "tensors"
        ? [`${k}: [${a.ids.map((i) => fmtFact(values[i]!.fact)).join(", ")}]`]
        : []
    )
    .join(", ");
}

/** Where a node stands in the graph text, and what its arguments are. */
export interface NodeSite {
  readonly op: Op;
  readonly name: string;
  readonly args: ReadonlyMap<string, NodeArg>;
  readonly known: ReadonlyMap<string, readonly boolean[]>;
  /** `graph.nnef:line:column` of the statement, for errors. */
  readonly where: string;
}

/**
 * The output facts of a node from its inputs' facts (contents unknown at load time read as
 * fresh symbols, so that inference goes on).
 *
 * @throws {RangeError} (or the op's own TypeError or SyntaxError) naming the op, where it
 * stands and its input facts
 */
export function inferFacts(node: NodeSite, values: readonly Value[], ctx: InferContext): Fact[] {
  const { op, name, args, known, where } = node;
  const inferArgs = new Args<Fact>(
    name,
    resolveArgs(args, (id) => values[id]!.fact, (id) => {
      const f = values[id]!.fact;
      const c = factContents(f);
      if (c !== undefined) return c;
      // Unknown at load time: a fresh symbol keeps shape inference going.
      return f.shape.length === 0 ? sym(`?${id}`) : f.shape.map((_, i) => sym(`?${id}.${i}`));
    }),
    known,
  );
  try {
    return op.infer(inferArgs, ctx);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const Cls = e instanceof TypeError
      ? TypeError
      : e instanceof SyntaxError
      ? SyntaxError
      : RangeError;
    throw new Cls(`${name} at ${where}: ${msg} (inputs ${describeInputs(args, values)})`);
  }
}
