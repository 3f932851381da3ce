/**
 * Lowering: the NNEF document's statements become nodes. Fragments with bodies are expanded,
 * arguments are matched to the op signatures, literals and symbols become constants, and each
 * node's outputs are inferred (`infer.ts`) or, when its inputs are known, folded (`fold.ts`).
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
import { findOp } from "../ops/mod.ts";
import { signatureOf } from "../ops/signature.ts";
import type { Fact, InferContext, Op } from "../ops/op.ts";
import { isIntegerLike, markWeak } from "../ops/common.ts";
import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { type DimExpr, sym } from "../tensor/dim.ts";
import type { AttrTemplate, GraphIO, Node, NodeArg, Value } from "./graph.ts";
import { inferFacts, knownItems } from "./infer.ts";
import { foldNode } from "./fold.ts";

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
function isTensorType(t: TypeSpec): boolean {
  return t.kind === "tensor";
}

function isTensorArray(t: TypeSpec): boolean {
  return t.kind === "array" && t.item.kind === "tensor";
}
/** Lowers one parsed document into nodes and values (see `buildModel`). */
export class GraphBuilder {
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
    const known = knownItems(args, this.values);
    const site = { op, name, args, known, where: this.#where };
    const facts = foldNode(site, this.values) ?? inferFacts(site, this.values, this.#ctx);
    const nodeId = this.nodes.length;
    const outputs = facts.map((fact) => {
      const id = this.values.length;
      this.values.push({ id, name: null, fact, producer: nodeId });
      return id;
    });
    this.nodes.push({ id: nodeId, op, name, args, known, outputs, where: site.where });
    return outputs;
  }
}
