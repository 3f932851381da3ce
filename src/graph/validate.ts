/**
 * Checks a parsed graph before anything is built or any weight is read: every name is defined
 * before it is used (so no cycle and no self-reference), every operator is known, every named
 * argument is one the operator declares, and an attribute the runtime reads only as a hint holds
 * a value it honours. A graph that passes can still fail on shapes (see `buildModel`), but never
 * because of what its text names.
 */
import type { Assignment, Document, Invocation, LValue, Position, RValue } from "../nnef/ast.ts";
import { findOp } from "../ops/mod.ts";
import { signatureOf } from "../ops/signature.ts";

/** One thing wrong with a graph, where it is. */
export interface GraphProblem {
  /** The error class the problem is thrown as. */
  readonly kind: typeof SyntaxError | typeof TypeError;
  readonly message: string;
  readonly at: Position;
}

/**
 * Attributes the ops compute at f32 whatever they say (precision hints): the values that are
 * honoured that way. Another value is refused rather than silently computed otherwise.
 */
const HINTS: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  tract_core_einsum: { acc: ["f32", "f16"], output: ["", "f32"] },
  tract_transformers_sdpa: { datum_type: ["f32", "f16"], acc_datum_type: ["f32", "f16"] },
  tract_core_softmax: { exp: ["", "fast_compact"] },
};

/**
 * Named arguments an op neither reads nor resolves, as in tract (its `variable-in-fragment` case
 * labels an `external` with its own name): meaningless, so ignored rather than refused.
 */
const IGNORED: Readonly<Record<string, readonly string[]>> = { external: ["label"] };

/** Ops whose `shape` argument may introduce a symbol without a `tract_symbol` line (as tract). */
const SYMBOL_SOURCES = new Set(["external", "tract_core_external"]);

const UNARY_OPS: Readonly<Record<string, string>> = { "-": "neg", "!": "not" };

/** At most this many problems are reported (the rest are counted). */
const MAX_REPORTED = 12;

const VALIDATED = new WeakSet<Document>();

/**
 * Throws when `doc` has a problem `graphProblems` finds: one line per problem (at most 12), each
 * `file:line:column: what`, thrown as the first problem's class. A document that passed once is
 * not walked again.
 *
 * @throws {SyntaxError} a name used before it is defined, a self-reference or a cycle, a graph
 * output never assigned
 * @throws {TypeError} an unknown operator, an argument the operator does not declare, or a
 * hint attribute with a value the runtime does not honour
 */
export function validateGraph(doc: Document, file = "graph.nnef"): void {
  if (VALIDATED.has(doc)) return;
  const problems = graphProblems(doc);
  if (problems.length > 0) {
    const lines = problems.slice(0, MAX_REPORTED).map((p) => `${where(file, p.at)}: ${p.message}`);
    const more = problems.length - lines.length;
    const text = problems.length === 1
      ? lines[0]!
      : `${problems.length} problems in ${file}:\n  ${lines.join("\n  ")}${
        more > 0 ? `\n  (and ${more} more)` : ""
      }`;
    throw new problems[0]!.kind(text);
  }
  VALIDATED.add(doc);
}

/** `file:line:column`. */
function where(file: string, at: Position): string {
  return `${file}:${at.line}:${at.column}`;
}

/** Everything wrong with `doc`'s names, operators and arguments, in text order. */
export function graphProblems(doc: Document): GraphProblem[] {
  const problems: GraphProblem[] = [];
  const symbols = new Set<string>();
  for (const e of doc.extensions) {
    if (e.id === "tract_symbol") symbols.add(e.rest.trim());
    else if (e.id === "tract_pulse_streaming_symbol") symbols.add("S");
  }
  const fragments = new Map(doc.fragments.map((f) => [f.decl.name, f]));
  const walker = new NameWalker(problems, symbols, fragments);
  for (const f of doc.fragments) {
    if (f.body === null || f.decl.name === "tract_core_properties") continue;
    const defined = walker.body(f.body, f.decl.parameters.map((p) => p.name));
    for (const r of f.decl.results) {
      if (!defined.has(r.name)) {
        problems.push({
          kind: SyntaxError,
          message: `fragment '${f.decl.name}' never assigns its result '${r.name}'`,
          at: f.decl.at,
        });
      }
    }
  }
  const defined = walker.body(doc.graph.body, []);
  for (const name of doc.graph.outputs) {
    if (!defined.has(name)) {
      problems.push({
        kind: SyntaxError,
        message: `graph output '${name}' is never assigned`,
        at: doc.graph.at,
      });
    }
  }
  return problems.sort((a, b) => a.at.line - b.at.line || a.at.column - b.at.column);
}

type Fragments = ReadonlyMap<string, Document["fragments"][number]>;

/** Walks assignments in order, tracking which names are defined so far. */
class NameWalker {
  readonly #problems: GraphProblem[];
  readonly #symbols: Set<string>;
  readonly #fragments: Fragments;

  constructor(problems: GraphProblem[], symbols: Set<string>, fragments: Fragments) {
    this.#problems = problems;
    this.#symbols = symbols;
    this.#fragments = fragments;
  }

  /** Checks a body whose scope starts with `params`; returns the names it defines. */
  body(body: readonly Assignment[], params: readonly string[]): Set<string> {
    const scope = new Set(params);
    // Where each name is (first) assigned, and what that assignment reads: to tell a cycle.
    const assigned = new Map<string, number>();
    body.forEach((stmt, i) => {
      for (const name of lvalueNames(stmt.left)) if (!assigned.has(name)) assigned.set(name, i);
    });
    body.forEach((stmt, i) => {
      const uses: { name: string; at: Position }[] = [];
      this.#rvalue(stmt.right, scope, uses, false);
      for (const use of uses) this.#undefined(use, i, body, assigned);
      for (const name of lvalueNames(stmt.left)) scope.add(name);
    });
    return scope;
  }

  /** Reports a name used at statement `i` that is not defined there. */
  #undefined(
    use: { name: string; at: Position },
    i: number,
    body: readonly Assignment[],
    assigned: ReadonlyMap<string, number>,
  ): void {
    const later = assigned.get(use.name);
    let message: string;
    if (later === i) {
      message = `'${use.name}' is used in its own definition`;
    } else if (later !== undefined && later > i) {
      const cycle = cycleThrough(use.name, i, body, assigned);
      const defined = body[later]!.at;
      message = cycle === null
        ? `'${use.name}' is used before its assignment at line ${defined.line}`
        : `'${use.name}' is used before its assignment at line ${defined.line}, which ` +
          `depends on this one (a cycle: ${cycle.join(" -> ")})`;
    } else {
      message = `unknown name '${use.name}' (not assigned before, nor a symbol declared ` +
        `with 'extension tract_symbol')`;
    }
    this.#problems.push({ kind: SyntaxError, message, at: use.at });
  }

  /** Collects the identifiers `r` reads that `scope` does not define into `uses`. */
  #rvalue(
    r: RValue,
    scope: Set<string>,
    uses: { name: string; at: Position }[],
    introducesSymbols: boolean,
  ): void {
    switch (r.kind) {
      case "literal":
        return;
      case "identifier":
        if (scope.has(r.name) || this.#symbols.has(r.name)) return;
        if (introducesSymbols) this.#symbols.add(r.name);
        else uses.push({ name: r.name, at: r.at });
        return;
      case "array":
      case "tuple":
        for (const item of r.items) this.#rvalue(item, scope, uses, introducesSymbols);
        return;
      case "invocation":
        this.#invocation(r.invocation, scope, uses);
        return;
      case "binary":
        this.#rvalue(r.left, scope, uses, introducesSymbols);
        this.#rvalue(r.right, scope, uses, introducesSymbols);
        return;
      case "unary":
        if (r.op !== "+" && findOp(UNARY_OPS[r.op]!) === undefined) {
          this.#problems.push({
            kind: TypeError,
            message: `unsupported operator '${r.op}'`,
            at: r.at,
          });
        }
        this.#rvalue(r.operand, scope, uses, introducesSymbols);
        return;
      case "if":
        for (const x of [r.condition, r.then, r.otherwise]) {
          this.#rvalue(x, scope, uses, introducesSymbols);
        }
        return;
      case "subscript":
        this.#rvalue(r.target, scope, uses, introducesSymbols);
        this.#rvalue(r.index, scope, uses, introducesSymbols);
        return;
      case "range":
        for (const x of [r.target, r.begin, r.end]) {
          if (x !== null) this.#rvalue(x, scope, uses, introducesSymbols);
        }
        return;
      case "comprehension": {
        const inner = new Set(scope);
        for (const loop of r.loops) {
          this.#rvalue(loop.over, inner, uses, introducesSymbols);
          inner.add(loop.name);
        }
        this.#rvalue(r.yield, inner, uses, introducesSymbols);
        return;
      }
    }
  }

  #invocation(inv: Invocation, scope: Set<string>, uses: { name: string; at: Position }[]): void {
    const params = this.#parameters(inv);
    for (const arg of inv.args) {
      if (arg.name !== null && IGNORED[inv.op]?.includes(arg.name)) continue;
      const symbolSource = SYMBOL_SOURCES.has(inv.op) &&
        (arg.name === "shape" || (arg.name === null && arg === inv.args[0]));
      this.#rvalue(arg.value, scope, uses, symbolSource);
      if (params === null || arg.name === null) continue;
      if (!params.includes(arg.name)) {
        this.#problems.push({
          kind: TypeError,
          message: `'${inv.op}' has no parameter '${arg.name}' (it takes ${
            params.length === 0 ? "none" : params.map((p) => `'${p}'`).join(", ")
          })`,
          at: arg.value.at,
        });
        continue;
      }
      const honoured = HINTS[inv.op]?.[arg.name];
      const value = arg.value;
      if (
        honoured !== undefined && value.kind === "literal" && value.literal.kind === "string" &&
        !honoured.includes(value.literal.value)
      ) {
        this.#problems.push({
          kind: TypeError,
          message: `'${inv.op}' computes ${arg.name} = '${value.literal.value}' otherwise than ` +
            `asked (supported: ${honoured.map((v) => `'${v}'`).join(", ")})`,
          at: value.at,
        });
      }
    }
  }

  /** The parameter names of the operator or fragment `inv` calls, or null (reported unknown). */
  #parameters(inv: Invocation): string[] | null {
    const fragment = this.#fragments.get(inv.op);
    if (fragment?.body) return fragment.decl.parameters.map((p) => p.name);
    const op = findOp(inv.op);
    if (op === undefined) {
      this.#problems.push({
        kind: TypeError,
        message: `unsupported operator '${inv.op}'`,
        at: inv.at,
      });
      return null;
    }
    return signatureOf(op).parameters.map((p) => p.name);
  }
}

function lvalueNames(left: LValue): string[] {
  return left.kind === "identifier" ? [left.name] : left.items.flatMap(lvalueNames);
}

/**
 * The chain of names from `name` (assigned after statement `i`) back to what statement `i`
 * assigns, when the later assignment depends on it; else null.
 */
function cycleThrough(
  name: string,
  i: number,
  body: readonly Assignment[],
  assigned: ReadonlyMap<string, number>,
): string[] | null {
  const targets = new Set(lvalueNames(body[i]!.left));
  const seen = new Set<string>();
  const walk = (current: string, path: string[]): string[] | null => {
    if (targets.has(current)) return [...path, current];
    if (seen.has(current)) return null;
    seen.add(current);
    const at = assigned.get(current);
    if (at === undefined) return null;
    for (const read of identifiersOf(body[at]!.right)) {
      const found = walk(read, [...path, current]);
      if (found !== null) return found;
    }
    return null;
  };
  const chain = walk(name, []);
  return chain === null ? null : [chain.at(-1)!, ...chain];
}

/** Every identifier `r` mentions. */
function identifiersOf(r: RValue, out: string[] = []): string[] {
  switch (r.kind) {
    case "identifier":
      out.push(r.name);
      break;
    case "array":
    case "tuple":
      for (const item of r.items) identifiersOf(item, out);
      break;
    case "invocation":
      for (const a of r.invocation.args) identifiersOf(a.value, out);
      break;
    case "binary":
      identifiersOf(r.left, out);
      identifiersOf(r.right, out);
      break;
    case "unary":
      identifiersOf(r.operand, out);
      break;
    case "if":
      for (const x of [r.condition, r.then, r.otherwise]) identifiersOf(x, out);
      break;
    case "subscript":
      identifiersOf(r.target, out);
      identifiersOf(r.index, out);
      break;
    case "range":
      for (const x of [r.target, r.begin, r.end]) if (x !== null) identifiersOf(x, out);
      break;
    case "comprehension":
      for (const loop of r.loops) identifiersOf(loop.over, out);
      identifiersOf(r.yield, out);
      break;
    case "literal":
      break;
  }
  return out;
}
