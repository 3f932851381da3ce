/**
 * Constant folding at load time: a node whose inputs are all known (weights, literals and
 * what depends only on them) is evaluated once, and its outputs become constants.
 */
import type { Fact } from "../ops/op.ts";
import { Args, type AttrValue } from "../ops/args.ts";
import { contiguous, isIntegerLike } from "../ops/common.ts";
import { type Tensor, volume } from "../tensor/tensor.ts";
import { argTensorIds, resolveArgs, templateWires, type Value } from "./graph.ts";
import { describeInputs, factContents, type NodeSite } from "./infer.ts";
import { pendingWeight, weightRoot, weightView } from "./weights.ts";

/** Ops whose load-time result on a weight still arriving is a view of its slot. */
const VIEW_FOLDS = new Set(["reshape", "unsqueeze", "squeeze", "copy", "tract_core_cast"]);

/** Thrown inside folding when the result would read a weight that has not arrived. */
const FOLD_SKIPPED = new Error("fold skipped");
function concreteContents(v: AttrValue | undefined): boolean {
  if (v === undefined) return false;
  if (Array.isArray(v)) return v.every(concreteContents);
  return typeof v !== "object" || v === null;
}
/**
 * The facts of a node's outputs with their values, when the node can run at load time;
 * undefined when it cannot (an input unknown, a graph input or variable, or a weight still
 * arriving that it would read other than as a view of its slot).
 *
 * @throws {RangeError} the op failing on its known inputs, naming it and where it stands
 */
export function foldNode(node: NodeSite, values: readonly Value[]): Fact[] | undefined {
  const { op, name, args, known, where } = node;
  const tensorIds = [...args.values()].flatMap(argTensorIds);
  const attrWires: number[] = [];
  for (const a of args.values()) if (a.kind === "attr") templateWires(a.value, attrWires);
  // Placed weights fold only into views of their slot (a reshape of a weight still
  // arriving included); anything else reading one that has not arrived runs at run time.
  const placedIn = tensorIds.flatMap((id) => {
    const v = values[id]!.fact.value;
    return v && weightRoot(v) ? [v] : [];
  });
  const waiting = placedIn.some((v) => pendingWeight(v) !== undefined);
  const foldable = name !== "external" && name !== "tract_core_external" && name !== "variable" &&
    (!waiting || VIEW_FOLDS.has(name)) &&
    tensorIds.every((id) => values[id]!.fact.value !== undefined) &&
    attrWires.every((id) => concreteContents(factContents(values[id]!.fact)));
  if (!foldable) return undefined;
  try {
    const evalArgs = new Args<Tensor>(
      name,
      resolveArgs(args, (id) => values[id]!.fact.value!, (id) => factContents(values[id]!.fact)!),
      known,
    );
    // Constants are stored in row-major order (a transpose gives a view).
    let ts = op.eval(evalArgs, { bindings: new Map() }).map(contiguous);
    if (placedIn.length > 0) {
      const viewed = ts.map((t) => {
        const from = placedIn.find((p) => p.data === t.data && p.dtype === t.dtype);
        return from ? weightView(from, t.shape) : t;
      });
      if (!waiting || viewed.every((t) => weightRoot(t))) ts = viewed;
      else ts = [];
    }
    if (ts.length === 0) throw FOLD_SKIPPED;
    return ts.map((t) => {
      const f: Fact = { dtype: t.dtype, shape: t.shape, value: t };
      return isIntegerLike(t.dtype) && volume(t.shape) <= 4096
        ? { ...f, dims: Array.from(t.data as Float64Array) }
        : f;
    });
  } catch (e) {
    if (e === FOLD_SKIPPED) return undefined;
    const msg = e instanceof Error ? e.message : String(e);
    throw new RangeError(`${name} at ${where}: ${msg} (inputs ${describeInputs(args, values)})`);
  }
}
