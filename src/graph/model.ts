/**
 * Loads an NNEF model (tract flavour) into a graph of ops with symbolic facts: fragments
 * with bodies are expanded, arguments are matched to the op signatures, every op's output
 * facts are inferred over symbolic dims before any data is touched, and what is constant
 * (weights, literals and what depends only on them) is folded once at load time.
 */
import type {
  Assignment,
  Document,
  FragmentDef,
  Invocation,
  LValue,
  Parameter,
  Position,
  RValue,
  TypeSpec,
} from "../nnef/ast.ts";
import { parseDocument } from "../nnef/parse.ts";
import { plainExecutor, type RunOptions } from "./executor.ts";
import type { Archive } from "../nnef/archive.ts";
import { decodeTensor, type TensorFile } from "../nnef/tensor_file.ts";
import type { LoaderOptions } from "../nnef/loader.ts";
import {
  archiveStream,
  type ModelStream,
  type ModelStreamOptions,
  openModelStream,
} from "../nnef/model_stream.ts";
import type { Kernels } from "../../kernels/mod.ts";
import {
  kernelWeight,
  loadWeight,
  openFloatLabels,
  pendingWeight,
  setPending,
  StreamPlacement,
  variableDecls,
  type WeightLoad,
  weightRoot,
  weightView,
} from "./weights.ts";
import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import type { ByteSource } from "../storage/byte_source.ts";
import { findOp } from "../ops/mod.ts";
import { signatureOf } from "../ops/signature.ts";
import { validateGraph } from "./validate.ts";
import type { Fact, InferContext, Op } from "../ops/op.ts";
import { Args, type ArgValue, type AttrValue } from "../ops/args.ts";
import { isIntegerLike, markWeak } from "../ops/common.ts";
import {
  type Assertion,
  type DimExpr,
  parseAssertion,
  shapeToString,
  sym,
  withLowerBounds,
} from "../tensor/dim.ts";

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
  readonly id: number;
  readonly op: Op;
  readonly name: string;
  readonly args: ReadonlyMap<string, NodeArg>;
  /** Per attribute, which items were numbers known at load time (see `OpArgs.knownAtLoad`). */
  readonly known: ReadonlyMap<string, readonly boolean[]>;
  readonly outputs: readonly number[];
  /** `graph.nnef:line` of the graph statement, with the fragment path when expanded. */
  readonly where: string;
}

/** A wire: one output of a node, with what is known about it at load time. */
export interface Value {
  readonly id: number;
  /** The first identifier the value was assigned to, if any. */
  name: string | null;
  readonly fact: Fact;
  readonly producer: number | null;
}

/** A graph input or output, by name. */
export interface GraphIO {
  readonly name: string;
  readonly id: number;
  readonly fact: Fact;
}

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /** Name used in error messages for the graph text (default `graph.nnef`). */
  readonly file?: string;
  /**
   * Load the large weights straight into these kernels' memory (Q4_0 linear filters are
   * interleaved there for the kernels' matmul; such a model runs only in sessions over these
   * kernels). Default: a buffer of their own per weight, readable by the TS path.
   */
  readonly kernels?: Kernels | false;
  /**
   * Resolve as soon as the graph is built, before the weights arrived (default false): await
   * `model.weightsReady`, or run the first steps with `Session.prefillAsync`, which waits
   * per node for the weights it reads.
   */
  readonly lazy?: boolean;
  /** Range reads of the loader (ranges in flight, part size, coalescing). */
  readonly loader?: LoaderOptions;
  /** How a location is opened (HTTP retries, S3 credentials, cache). */
  readonly open?: ModelStreamOptions;
}

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
}

type Val =
  | { readonly kind: "wire"; readonly id: number }
  | { readonly kind: "lit"; readonly value: number | string | boolean; readonly isScalar: boolean }
  | { readonly kind: "dim"; readonly dim: DimExpr }
  | { readonly kind: "array"; readonly items: readonly Val[] }
  | { readonly kind: "tuple"; readonly items: readonly Val[] };

const BINARY_OPS: Readonly<Record<string, string>> = {
  "+": "add",
  "-": "sub",
  "*": "mul",
  "/": "div",
  "^": "pow",
  "<": "lt",
  ">": "gt",
  "==": "eq",
  "!=": "ne",
  "<=": "le",
  ">=": "ge",
  "&&": "and",
  "||": "or",
};

/** Ops whose load-time result on a weight still arriving is a view of its slot. */
const VIEW_FOLDS = new Set(["reshape", "unsqueeze", "squeeze", "copy", "tract_core_cast"]);

/** Thrown inside folding when the result would read a weight that has not arrived. */
const FOLD_SKIPPED = new Error("fold skipped");

function isTensorType(t: TypeSpec): boolean {
  return t.kind === "tensor";
}

function isTensorArray(t: TypeSpec): boolean {
  return t.kind === "array" && t.item.kind === "tensor";
}

function fmtFact(f: Fact): string {
  return `${f.dtype}${shapeToString(f.shape)}`;
}

/** Known contents of a fact as attribute values, when small and known. */
function factContents(f: Fact): AttrValue | undefined {
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

function concreteContents(v: AttrValue | undefined): boolean {
  if (v === undefined) return false;
  if (Array.isArray(v)) return v.every(concreteContents);
  return typeof v !== "object" || v === null;
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

/** The input of a cast to its own item type or a copy (a no-op at run time), else null. */
export function identityInput(model: Model, node: Node): number | null {
  if (node.name !== "tract_core_cast" && node.name !== "copy") return null;
  const arg = node.args.get(node.name === "copy" ? "x" : "input");
  if (arg?.kind !== "tensor" || node.outputs.length !== 1) return null;
  const out = model.values[node.outputs[0]!]!.fact;
  return model.values[arg.id]!.fact.dtype === out.dtype ? arg.id : null;
}

/** The value `id` stands for, followed back through casts to its own type and copies. */
export function throughIdentities(model: Model, id: number): number {
  for (;;) {
    const producer = model.values[id]!.producer;
    const from = producer === null ? null : identityInput(model, model.nodes[producer]!);
    if (from === null) return id;
    id = from;
  }
}

/** A loaded model: the expanded graph with its facts, inputs, outputs and metadata. */
export class Model {
  readonly nodes: readonly Node[];
  readonly values: readonly Value[];
  readonly inputs: readonly GraphIO[];
  readonly outputs: readonly GraphIO[];
  /** Symbols declared with `extension tract_symbol`. */
  readonly symbols: readonly string[];
  /** `extension tract_assert` constraints; scenario ones apply only in their scenario. */
  readonly assertions: readonly Assertion[];
  /** The `tract_core_properties` fragment (t2n writes strings). */
  readonly properties: ReadonlyMap<string, string>;

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

class Builder {
  readonly nodes: Node[] = [];
  readonly values: Value[] = [];
  readonly inputs: { name: string; id: number }[] = [];
  readonly #doc: Document;
  readonly #file: string;
  readonly #fragments = new Map<string, FragmentDef>();
  readonly #ctx: InferContext;
  readonly #symbols: Set<string>;
  #where = "";
  #depth = 0;

  constructor(doc: Document, file: string, ctx: InferContext, symbols: Set<string>) {
    this.#doc = doc;
    this.#file = file;
    this.#ctx = ctx;
    this.#symbols = symbols;
    for (const f of doc.fragments) {
      if (f.body && f.decl.name !== "tract_core_properties") this.#fragments.set(f.decl.name, f);
    }
  }

  #at(p: Position): string {
    return `${this.#file}:${p.line}:${p.column}`;
  }

  build(): { outputs: GraphIO[] } {
    const scope = new Map<string, Val>();
    for (const stmt of this.#doc.graph.body) {
      this.#where = this.#at(stmt.at);
      this.#assign(stmt, scope, true);
    }
    const outputs = this.#doc.graph.outputs.map((name) => {
      const v = scope.get(name);
      if (!v) {
        throw new SyntaxError(`Graph output '${name}' is never assigned in ${this.#file}`);
      }
      const id = this.#wire(v);
      this.values[id]!.name ??= name;
      return { name, id, fact: this.values[id]!.fact };
    });
    return { outputs };
  }

  #assign(stmt: Assignment, scope: Map<string, Val>, top: boolean): void {
    const external = this.nodes.length;
    const val = this.#rvalue(stmt.right, scope);
    this.#bind(stmt.left, val, scope);
    if (top && stmt.left.kind === "identifier") {
      // A graph input is named by the identifier its external is assigned to.
      for (let i = external; i < this.nodes.length; i++) {
        const n = this.nodes[i]!;
        if ((n.name === "external" || n.name === "tract_core_external") && val.kind === "wire") {
          if (n.outputs[0] === val.id) this.inputs.push({ name: stmt.left.name, id: val.id });
        }
      }
    }
  }

  #bind(left: LValue, val: Val, scope: Map<string, Val>): void {
    if (left.kind === "identifier") {
      scope.set(left.name, val);
      if (val.kind === "wire") this.values[val.id]!.name ??= left.name;
      return;
    }
    if (val.kind !== "tuple" && val.kind !== "array") {
      throw new SyntaxError(
        `Cannot unpack a single value into ${left.items.length} names at ${this.#at(left.at)}`,
      );
    }
    left.items.forEach((item, i) => {
      const v = val.items[i];
      if (!v) throw new SyntaxError(`Too few values to unpack at ${this.#at(left.at)}`);
      this.#bind(item, v, scope);
    });
  }

  #rvalue(r: RValue, scope: Map<string, Val>): Val {
    switch (r.kind) {
      case "literal": {
        const l = r.literal;
        if (l.kind === "number") return { kind: "lit", value: l.value, isScalar: l.isScalar };
        return { kind: "lit", value: l.value, isScalar: false };
      }
      case "identifier": {
        const v = scope.get(r.name);
        if (v) return v;
        // tract: an identifier not in scope is a dimension symbol.
        this.#symbols.add(r.name);
        return { kind: "dim", dim: sym(r.name) };
      }
      case "array":
        return { kind: "array", items: r.items.map((i) => this.#rvalue(i, scope)) };
      case "tuple":
        return { kind: "tuple", items: r.items.map((i) => this.#rvalue(i, scope)) };
      case "invocation":
        return this.#invoke(r.invocation, scope);
      case "binary": {
        const name = BINARY_OPS[r.op];
        if (!name) throw new SyntaxError(`Unsupported operator '${r.op}' at ${this.#at(r.at)}`);
        const left = this.#rvalue(r.left, scope);
        const right = this.#rvalue(r.right, scope);
        return this.#call(name, null, [
          { name: null, val: left },
          { name: null, val: right },
        ], r.at);
      }
      case "unary": {
        const operand = this.#rvalue(r.operand, scope);
        if (r.op === "+") return operand;
        if (operand.kind === "lit" && typeof operand.value === "number" && r.op === "-") {
          return { ...operand, value: -operand.value };
        }
        return this.#call(r.op === "-" ? "neg" : "not", null, [{ name: null, val: operand }], r.at);
      }
      case "subscript": {
        const target = this.#rvalue(r.target, scope);
        const index = this.#rvalue(r.index, scope);
        if ((target.kind === "array" || target.kind === "tuple") && index.kind === "lit") {
          const item = target.items[index.value as number];
          if (item) return item;
        }
        throw new SyntaxError(`Unsupported subscript at ${this.#at(r.at)}`);
      }
      default:
        throw new SyntaxError(`Unsupported expression (${r.kind}) at ${this.#at(r.at)}`);
    }
  }

  #invoke(inv: Invocation, scope: Map<string, Val>): Val {
    const args = inv.args.map((a) => ({ name: a.name, val: this.#rvalue(a.value, scope) }));
    return this.#call(inv.op, inv.generic, args, inv.at);
  }

  #match(
    params: readonly Parameter[],
    args: readonly { name: string | null; val: Val }[],
    what: string,
    at: Position,
  ): Map<string, Val | null> {
    const out = new Map<string, Val | null>();
    let positional = 0;
    while (positional < args.length && args[positional]!.name === null) positional++;
    for (const a of args.slice(positional)) {
      if (a.name === null) {
        throw new SyntaxError(
          `Positional argument after a named one in ${what} at ${this.#at(at)}`,
        );
      }
      // tract ignores named arguments an op does not declare (e.g. `external(label = ...)`).
    }
    if (positional > params.length) {
      throw new TypeError(`Too many arguments for ${what} at ${this.#at(at)}`);
    }
    params.forEach((p, i) => {
      const named = args.find((a) => a.name === p.name);
      if (named) out.set(p.name, named.val);
      else if (i < positional) out.set(p.name, args[i]!.val);
      else if (p.default) out.set(p.name, this.#rvalue(p.default, new Map()));
      else throw new TypeError(`Missing argument '${p.name}' for ${what} at ${this.#at(at)}`);
    });
    return out;
  }

  #call(
    name: string,
    generic: string | null,
    args: readonly { name: string | null; val: Val }[],
    at: Position,
  ): Val {
    const fragment = this.#fragments.get(name);
    if (fragment) return this.#expand(fragment, args, at);
    const op = findOp(name);
    if (!op) throw new TypeError(`unsupported operator '${name}' at ${this.#at(at)}`);
    const sig = signatureOf(op);
    const matched = this.#match(sig.parameters, args, `'${name}'`, at);
    const nodeArgs = new Map<string, NodeArg>();
    for (const p of sig.parameters) {
      const v = matched.get(p.name) ?? null;
      if (isTensorType(p.type)) {
        if (v && v.kind === "array" && v.items.length === 0) {
          nodeArgs.set(p.name, { kind: "attr", value: [] });
        } else nodeArgs.set(p.name, { kind: "tensor", id: this.#wire(v!) });
      } else if (isTensorArray(p.type)) {
        if (!v || (v.kind !== "array" && v.kind !== "tuple")) {
          throw new TypeError(
            `Argument '${p.name}' of '${name}' must be a list at ${this.#at(at)}`,
          );
        }
        nodeArgs.set(p.name, { kind: "tensors", ids: v.items.map((i) => this.#wire(i)) });
      } else {
        nodeArgs.set(p.name, { kind: "attr", value: v ? this.#template(v) : null });
      }
    }
    nodeArgs.set("?", { kind: "attr", value: generic ?? sig.genericDefault ?? "scalar" });
    const outs = this.#addNode(op, name, nodeArgs);
    return outs.length === 1
      ? { kind: "wire", id: outs[0]! }
      : { kind: "tuple", items: outs.map((id) => ({ kind: "wire", id }) as Val) };
  }

  #expand(
    fragment: FragmentDef,
    args: readonly { name: string | null; val: Val }[],
    at: Position,
  ): Val {
    if (++this.#depth > 64) {
      throw new RangeError(`Fragment '${fragment.decl.name}' recurses too deep at ${this.#at(at)}`);
    }
    const outer = this.#where;
    this.#where = `${outer} (in fragment ${fragment.decl.name})`;
    try {
      const matched = this.#match(
        fragment.decl.parameters,
        args,
        `fragment '${fragment.decl.name}'`,
        at,
      );
      const scope = new Map<string, Val>();
      for (const [k, v] of matched) if (v) scope.set(k, v);
      for (const stmt of fragment.body!) this.#assign(stmt, scope, false);
      const results = fragment.decl.results.map((r) => {
        const v = scope.get(r.name);
        if (!v) {
          throw new SyntaxError(
            `Fragment '${fragment.decl.name}' never assigns its result '${r.name}'`,
          );
        }
        return v;
      });
      return results.length === 1 ? results[0]! : { kind: "tuple", items: results };
    } finally {
      this.#where = outer;
      this.#depth--;
    }
  }

  #template(v: Val): AttrTemplate {
    switch (v.kind) {
      case "lit":
        return v.value;
      case "dim":
        return v.dim;
      case "wire":
        return { wire: v.id };
      case "array":
      case "tuple":
        return v.items.map((i) => this.#template(i));
    }
  }

  #constant(t: Tensor, weak: boolean): number {
    const id = this.values.length;
    const value = weak ? markWeak(t) : t;
    const fact: Fact = { dtype: t.dtype, shape: t.shape, value, ...(weak ? { weak } : {}) };
    const withDims = isIntegerLike(t.dtype) && volume(t.shape) <= 4096
      ? { ...fact, dims: Array.from(t.data as Float64Array) }
      : fact;
    this.values.push({ id, name: null, fact: withDims, producer: null });
    return id;
  }

  /** A wire for `v`, creating constants for literals, literal arrays and symbols. */
  #wire(v: Val): number {
    if (v.kind === "wire") return v.id;
    if (v.kind === "dim") {
      const id = this.values.length;
      this.values.push({
        id,
        name: null,
        fact: { dtype: "tdim", shape: [], dims: [v.dim] },
        producer: null,
      });
      return id;
    }
    if (v.kind === "lit") {
      if (typeof v.value === "string") {
        return this.#constant(tensor("string", [], [v.value]), false);
      }
      const dtype = typeof v.value === "boolean" ? "bool" : v.isScalar ? "f32" : "i64";
      const t = tensor(dtype, []);
      (t.data as Float32Array)[0] = Number(v.value);
      return this.#constant(t, true);
    }
    // A literal (nested) array becomes a constant tensor; wires inside are not allowed.
    const shape: number[] = [];
    let level: Val = v;
    while (level.kind === "array" || level.kind === "tuple") {
      shape.push(level.items.length);
      if (level.items.length === 0) break;
      level = level.items[0]!;
    }
    const flat: Val[] = [];
    const walk = (x: Val, depth: number): void => {
      if (x.kind === "array" || x.kind === "tuple") {
        if (x.items.length !== shape[depth]) {
          throw new SyntaxError(`Ragged literal array in ${this.#where}`);
        }
        for (const i of x.items) walk(i, depth + 1);
      } else flat.push(x);
    };
    walk(v, 0);
    if (flat.some((x) => x.kind !== "lit")) {
      if (flat.every((x) => x.kind === "lit" || x.kind === "dim")) {
        const id = this.values.length;
        const dims = flat.map((
          x,
        ) => (x.kind === "dim" ? x.dim : Number((x as { value: number }).value)));
        this.values.push({ id, name: null, fact: { dtype: "tdim", shape, dims }, producer: null });
        return id;
      }
      throw new TypeError(`A list holding wires cannot be used as a tensor in ${this.#where}`);
    }
    const lits = flat as { kind: "lit"; value: number | string | boolean; isScalar: boolean }[];
    const dtype = lits.some((l) => typeof l.value === "boolean")
      ? "bool"
      : lits.some((l) => l.isScalar)
      ? "f32"
      : "i64";
    const t = tensor(dtype, shape);
    (t.data as Float32Array).set(lits.map((l) => Number(l.value)));
    return this.#constant(t, false);
  }

  #addNode(op: Op, name: string, args: Map<string, NodeArg>): number[] {
    const where = this.#where;
    const known = new Map<string, boolean[]>();
    const itemKnown = (t: AttrTemplate): boolean => {
      if (typeof t === "number") return true;
      if (t !== null && typeof t === "object" && "wire" in t) {
        const c = factContents(this.values[(t as { wire: number }).wire]!.fact);
        return typeof c === "number" ||
          (Array.isArray(c) && c.length === 1 && typeof c[0] === "number");
      }
      return false;
    };
    for (const [k, a] of args) {
      if (a.kind !== "attr") continue;
      known.set(k, Array.isArray(a.value) ? a.value.map(itemKnown) : [itemKnown(a.value)]);
    }
    const inputFacts = (): string =>
      [...args.entries()]
        .flatMap(([k, a]) =>
          a.kind === "tensor"
            ? [`${k}: ${fmtFact(this.values[a.id]!.fact)}`]
            : a.kind === "tensors"
            ? [`${k}: [${a.ids.map((i) => fmtFact(this.values[i]!.fact)).join(", ")}]`]
            : []
        )
        .join(", ");
    const inferArgs = new Args<Fact>(
      name,
      this.#resolve(args, (id) => this.values[id]!.fact, (id) => {
        const f = this.values[id]!.fact;
        const c = factContents(f);
        if (c !== undefined) return c;
        // Unknown at load time: a fresh symbol keeps shape inference going.
        return f.shape.length === 0 ? sym(`?${id}`) : f.shape.map((_, i) => sym(`?${id}.${i}`));
      }),
      known,
    );
    let facts: Fact[];
    try {
      facts = op.infer(inferArgs, this.#ctx);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const Cls = e instanceof TypeError
        ? TypeError
        : e instanceof SyntaxError
        ? SyntaxError
        : RangeError;
      throw new Cls(`${name} at ${where}: ${msg} (inputs ${inputFacts()})`);
    }
    const tensorIds = [...args.values()].flatMap(argTensorIds);
    const attrWires: number[] = [];
    for (const a of args.values()) if (a.kind === "attr") templateWires(a.value, attrWires);
    // Placed weights fold only into views of their slot (a reshape of a weight still
    // arriving included); anything else reading one that has not arrived runs at run time.
    const placedIn = tensorIds.flatMap((id) => {
      const v = this.values[id]!.fact.value;
      return v && weightRoot(v) ? [v] : [];
    });
    const waiting = placedIn.some((v) => pendingWeight(v) !== undefined);
    const foldable = name !== "external" && name !== "tract_core_external" && name !== "variable" &&
      (!waiting || VIEW_FOLDS.has(name)) &&
      tensorIds.every((id) => this.values[id]!.fact.value !== undefined) &&
      attrWires.every((id) => concreteContents(factContents(this.values[id]!.fact)));
    if (foldable) {
      try {
        const evalArgs = new Args<Tensor>(
          name,
          this.#resolve(
            args,
            (id) => this.values[id]!.fact.value!,
            (id) => factContents(this.values[id]!.fact)!,
          ),
          known,
        );
        let ts = op.eval(evalArgs, { bindings: new Map() });
        if (placedIn.length > 0) {
          const viewed = ts.map((t) => {
            const from = placedIn.find((p) => p.data === t.data && p.dtype === t.dtype);
            return from ? weightView(from, t.shape) : t;
          });
          if (!waiting || viewed.every((t) => weightRoot(t))) ts = viewed;
          else ts = [];
        }
        if (ts.length === 0) throw FOLD_SKIPPED;
        facts = ts.map((t) => {
          const f: Fact = { dtype: t.dtype, shape: t.shape, value: t };
          return isIntegerLike(t.dtype) && volume(t.shape) <= 4096
            ? { ...f, dims: Array.from(t.data as Float64Array) }
            : f;
        });
      } catch (e) {
        if (e !== FOLD_SKIPPED) {
          const msg = e instanceof Error ? e.message : String(e);
          throw new RangeError(`${name} at ${where}: ${msg} (inputs ${inputFacts()})`);
        }
      }
    }
    const nodeId = this.nodes.length;
    const outputs = facts.map((fact) => {
      const id = this.values.length;
      this.values.push({ id, name: null, fact, producer: nodeId });
      return id;
    });
    this.nodes.push({ id: nodeId, op, name, args, known, outputs, where });
    return outputs;
  }

  #resolve<T>(
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
  options: LoadOptions = {},
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
  const builder = new Builder(doc, file, ctx, symbols);
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

/** The member of `label`: `label.dat`, or without a leading `/`, when the archive lists it. */
function memberOf(label: string, sizes: ReadonlyMap<string, number> | null): string | undefined {
  const plain = `${label}.dat`;
  const stripped = `${label.replace(/^\//, "")}.dat`;
  if (sizes === null) return stripped;
  return sizes.has(plain) ? plain : sizes.has(stripped) ? stripped : undefined;
}

/**
 * The placed weights read at run time as the filter of a `linear` node, and those read by
 * anything else (or that are graph outputs): a weight only in the first set may be laid out
 * for the kernels' matmul alone.
 */
function weightReaders(model: Model): { linear: Set<Tensor>; other: Set<Tensor> } {
  const linear = new Set<Tensor>();
  const other = new Set<Tensor>();
  const rootOf = (id: number): Tensor | undefined => {
    const v = model.values[id]!.fact.value;
    return v && weightRoot(v);
  };
  for (const node of model.nodes) {
    // Folded at load time (views of a weight): never runs.
    if (node.outputs.every((o) => model.values[o]!.fact.value !== undefined)) continue;
    for (const [k, a] of node.args) {
      for (const id of argTensorIds(a)) {
        const root = rootOf(id);
        if (root) (node.name === "linear" && k === "filter" ? linear : other).add(root);
      }
    }
  }
  for (const o of model.outputs) {
    const root = rootOf(o.id);
    if (root) other.add(root);
  }
  return { linear, other };
}

/**
 * Loads an NNEF model: a folder, `.tar` or `.tgz` path or URL (`http(s)://`, `s3://`), a
 * `ByteSource`, an opened `Archive`, or a `ModelStream` from `openModelStream` (e.g. one whose
 * other members the caller claims through `onMember`). What loadModel opens it closes once the
 * last weight is in (or the load failed); a given `Archive` or `ModelStream` is left open, for
 * the caller to close once `model.weightsReady` settled (`options.loader` and `options.open`
 * apply only to what loadModel opens; `model.loadStats` counts all the stream wrote, members
 * the caller claimed included). Reads `graph.nnef` first, then the small
 * variables (decoded: folding needs them), then the large weights in the order the graph
 * declares them, several ranges in flight, each written once straight into its final place
 * (`options.kernels`' memory, or a buffer of its own) and used in place as the tensor's data.
 * A `.tgz` location is streamed once, each weight written into place as its member passes;
 * with `options.lazy` the graph is built once `graph.nnef` and the small variables passed,
 * and the large weights still in the stream are waited for per node.
 *
 * With `options.lazy`, resolves once the graph is built: `model.weightsReady` resolves when
 * the last weight is in place, and `Session.prefillAsync` runs meanwhile, each node waiting
 * only for the weights it reads.
 *
 * @example
 * ```ts ignore
 * const model = await loadModel("stories260K_f32.nnef.tgz");
 * console.log(model.inputs.map((i) => i.name));
 * ```
 */
export async function loadModel(
  source: string | ByteSource | Archive | ModelStream,
  options: LoadOptions = {},
): Promise<Model> {
  const t0 = performance.now();
  const archive = typeof source === "object" && "loader" in source ? source : undefined;
  const stream = typeof source === "object" && "onMember" in source ? source : undefined;
  const weights: ModelStream = stream ??
    (archive
      ? archiveStream(archive, {
        ...(options.loader ? { loader: options.loader } : {}),
        owns: false,
      })
      : await openModelStream(source as string | ByteSource, {
        ...options.open,
        ...(options.loader ? { loader: options.loader } : {}),
      }));
  const kernels = options.kernels || null;
  const loads: WeightLoad[] = [];
  let closed = false;
  const close = async (reason?: Error): Promise<void> => {
    if (closed || stream) return;
    closed = true;
    await weights.close(reason);
  };
  try {
    const file = options.file ?? `${weights.name}/graph.nnef`;
    // Sizes up front for a range-readable archive; a `.tgz` stream learns them as it flows.
    let sizes: Map<string, number> | null = null;
    if (weights.kind !== "tgz" || archive) {
      sizes = new Map();
      for await (const m of weights.members()) sizes.set(m.name, m.size);
      if (!sizes.has("graph.nnef")) throw new RangeError(`${weights.name} has no graph.nnef`);
    }
    // A lazy `.tgz` stream: weights passing before the graph go to slots of their own size,
    // bound to their variables once it is parsed; the graph is built before the rest arrive.
    const placement = sizes === null && options.lazy ? new StreamPlacement(weights, kernels) : null;
    const text = new TextDecoder().decode(await weights.read("graph.nnef"));
    const doc = parseDocument(text, file);
    // Before any weight is read: a graph that names what does not exist fails at once.
    validateGraph(doc, file);
    let smallDone!: () => void;
    const small = new Promise<void>((resolve) => (smallDone = resolve));
    if (placement) loads.push(...placement.bind(variableDecls(doc), openFloatLabels(doc, text)));
    else {
      variableDecls(doc).forEach((decl, i) => {
        const member = memberOf(decl.label, sizes);
        if (member === undefined) return;
        loads.push(loadWeight(weights, decl, member, sizes?.get(member), i, kernels, small));
      });
    }
    const tensors = new Map<string, TensorFile | Tensor>();
    const settling = Promise.all(
      loads.map((l) => l.placed ? Promise.resolve(l.placed.tensor) : l.value),
    );
    settling.then(() => smallDone(), () => smallDone());
    const settled = await settling;
    loads.forEach((l, i) => tensors.set(l.label, settled[i]!));
    // Graph quantization (u8/i8 with zero points) is not implemented: refuse such graphs
    // with that reason, unless an unsupported operator already says more.
    if (sizes === null && placement === null) {
      sizes = new Map();
      for await (const m of weights.members()) sizes.set(m.name, m.size);
    }
    // A lazy stream knows only the members passed so far: a graph.quant passing later, before
    // the last weight, fails weightsReady.
    const hasQuant = placement ? placement.seen("graph.quant") : sizes!.has("graph.quant");
    const quant = hasQuant
      ? new TextDecoder().decode(await weights.read("graph.quant")).trim()
      : "";
    const refuse = (): never => {
      throw new TypeError(
        `${weights.name}: unsupported graph.quant quantization (zero-point/scale tensors are not implemented)`,
      );
    };
    let model: Model;
    try {
      model = buildModel(doc, tensors, { file });
    } catch (e) {
      if (quant !== "" && !(e instanceof Error && e.message.includes("unsupported operator"))) {
        refuse();
      }
      throw e;
    }
    if (quant !== "") refuse();
    const graphMs = performance.now() - t0;
    model.weightKernels = kernels;
    // Declaration order started the loads; what is not requested yet follows first use.
    const memberOfTensor = new Map<Tensor, string>();
    for (const l of loads) if (l.placed) memberOfTensor.set(l.placed.tensor, l.member);
    let rank = 0;
    for (const node of model.nodes) {
      for (const a of node.args.values()) {
        for (const id of argTensorIds(a)) {
          const v = model.values[id]!.fact.value;
          const root = v && weightRoot(v);
          const member = root && memberOfTensor.get(root);
          if (member === undefined) continue;
          weights.prioritize(member, rank++);
          memberOfTensor.delete(root!);
        }
      }
    }
    const { linear, other } = weightReaders(model);
    const ready: Promise<void>[] = [];
    for (const [i, l] of loads.entries()) {
      // A `.tgz` stream's weights were placed as they came, and are all in already.
      const got = settled[i]!;
      const placed = l.placed ??
        ("header" in got ? null : { tensor: got, arrived: Promise.resolve() });
      if (!placed) continue;
      const t = placed.tensor;
      let arrival = placed.arrived;
      const slot = kernelWeight(t);
      if (
        slot && t.dtype === "q40" && t.shape.length === 2 && t.shape[1]! % 32 === 0 &&
        linear.has(t) && !other.has(t)
      ) {
        // Interleaved in place once arrived: only the kernels' matmul reads it from then on.
        slot.layout = "rows8";
        model.kernelOnly = true;
        arrival = arrival.then(() => {
          slot.kernels.interleaveQ4_0Rows8(slot.offset, t.shape[0]!, t.shape[1]!);
        });
        setPending(t, arrival);
      }
      ready.push(arrival);
    }
    let weightsMs = NaN;
    model.loadStats = {
      get members() {
        return weights.stats.membersLoaded + 1;
      },
      get bytes() {
        return weights.stats.bytesWritten;
      },
      graphMs,
      get weightsMs() {
        return weightsMs;
      },
    };
    // A `.tgz` is whole only once its gzip trailer checked out, after its last member arrived.
    model.weightsReady = Promise.all([...ready, weights.ended]).then(
      async () => {
        weightsMs = performance.now() - t0;
        await close();
        if (placement && !hasQuant && placement.seen("graph.quant")) refuse();
      },
      async (e) => {
        // The loads still pending fail saying which weight stopped the load.
        await close(e instanceof Error ? e : undefined).catch(() => {});
        throw e;
      },
    );
    model.weightsReady.catch(() => {});
    if (!options.lazy) await model.weightsReady;
    return model;
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}
