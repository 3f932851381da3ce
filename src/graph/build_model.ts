/**
 * Builds a {@link Model} from a parsed document and its tensors: the graph's symbols and
 * assertions from its extensions, then the lowering of its statements.
 */
import type { Document } from "../nnef/ast.ts";
import { decodeTensor } from "../nnef/tensor_decode.ts";
import type { TensorFile } from "../nnef/tensor_file.ts";
import type { InferContext } from "../ops/op.ts";
import { type Tensor, volume } from "../tensor/tensor.ts";
import { type Assertion, parseAssertion } from "../tensor/dim_parse.ts";
import { withLowerBounds } from "../tensor/dim.ts";
import { validateGraph } from "./validate.ts";
import { GraphBuilder } from "./lower.ts";
import { Model } from "./model.ts";

/** Options of {@link buildModel}. */
export interface BuildOptions {
  /** Name used in error messages for the graph text (default `graph.nnef`). */
  readonly file?: string;
}

function parseProperties(doc: Document): Map<string, string> {
  const out = new Map<string, string>();
  const frag = doc.fragments.find((f) => f.decl.name === "tract_core_properties");
  for (const stmt of frag?.body ?? []) {
    if (stmt.right.kind !== "array") continue;
    for (const item of stmt.right.items) {
      if (item.kind !== "tuple" || item.items.length !== 2) continue;
      const [k, v] = item.items;
      if (k?.kind === "literal" && k.literal.kind === "string" && v?.kind === "literal") {
        const l = v.literal;
        out.set(k.literal.value, l.kind === "number" ? l.text : String(l.value));
      }
    }
  }
  return out;
}

/** Lower bounds of symbols from assertions such as `S >= 1` or `S > 0` (any scenario-free). */
function lowerBounds(assertions: readonly Assertion[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const a of assertions) {
    if (a.scenario !== null || typeof a.right !== "number") continue;
    if (a.op !== ">=" && a.op !== ">") continue;
    const name = typeof a.left === "number" ? null : a.left.key;
    if (name === null || !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) continue;
    const lb = a.op === ">" ? a.right + 1 : a.right;
    out.set(name, Math.max(out.get(name) ?? 0, lb));
  }
  return out;
}

/**
 * Builds a model from a parsed document and its tensors (by label, as read from `.dat`
 * files). Used by {@link loadModel}; handy for graphs built in memory.
 *
 * @throws {TypeError} `graph.nnef:LINE:COLUMN: unsupported operator 'conv'` and argument errors
 * @throws {SyntaxError} a name used before it is defined (see `validateGraph`)
 * @throws {RangeError} an op given impossible shapes, with its name, line and input shapes
 */
export function buildModel(
  doc: Document,
  tensors: ReadonlyMap<string, TensorFile | Tensor>,
  options: BuildOptions = {},
): Model {
  const file = options.file ?? "graph.nnef";
  validateGraph(doc, file);
  const symbols = new Set<string>();
  const assertions: Assertion[] = [];
  for (const e of doc.extensions) {
    if (e.id === "tract_symbol") symbols.add(e.rest.trim());
    else if (e.id === "tract_pulse_streaming_symbol") symbols.add("S");
    else if (e.id === "tract_assert") assertions.push(parseAssertion(e.rest));
  }
  const ctx: InferContext = {
    variable(label: string, shape: readonly number[]): Tensor {
      const stored = tensors.get(label) ?? tensors.get(label.replace(/^\//, ""));
      if (!stored) {
        throw new RangeError(`No tensor '${label}.dat' in the archive for variable '${label}'`);
      }
      if ("header" in stored) return decodeTensor(stored, shape);
      // A placed weight is a view of its slot, shaped by the graph already: keep it as is.
      if (stored.shape.length === shape.length && stored.shape.every((d, i) => d === shape[i])) {
        return stored;
      }
      if (volume(stored.shape) !== volume(shape)) {
        throw new RangeError(
          `Tensor '${label}' has shape [${stored.shape}], the graph says [${shape}]`,
        );
      }
      return { ...stored, shape: [...shape] };
    },
  };
  const builder = new GraphBuilder(doc, file, ctx, symbols);
  const { outputs } = withLowerBounds(lowerBounds(assertions), () => builder.build());
  const inputs = builder.inputs.map((i) => ({ ...i, fact: builder.values[i.id]!.fact }));
  return new Model({
    nodes: builder.nodes,
    values: builder.values,
    inputs,
    outputs,
    symbols: [...symbols].filter((s) => !s.startsWith("?")),
    assertions,
    properties: parseProperties(doc),
  });
}
