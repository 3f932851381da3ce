/**
 * Symbolic integer dimensions (tract's TDim): integers, symbols such as `S` and `P`, and
 * `+ - *`, division by an integer constant, `min`, `max` and `broadcast` over them.
 *
 * A non-constant expression is kept in one canonical form, a sum of products sorted by
 * key, so that `P+S` and `S+P` are the same value and compare equal by `key`. A constant
 * is always a plain `number`.
 */

/** A dimension: a plain integer or a symbolic expression. */
export type Dim = number | DimExpr;

/**
 * A factor of a term: a symbol, or an operation that does not distribute (division, min, max,
 * broadcast).
 */
export type Atom =
  | { readonly kind: "sym"; readonly name: string; readonly key: string }
  | { readonly kind: "div"; readonly num: DimExpr; readonly q: number; readonly key: string }
  | {
    readonly kind: "min" | "max" | "broadcast";
    readonly args: readonly Dim[];
    readonly key: string;
  };

/** One product of a sum: a coefficient times atoms. */
export interface Term {
  /** The integer coefficient. */
  readonly coef: number;
  /** Sorted by key; a repeated atom is a power (`S*S`). Empty for the constant term. */
  readonly atoms: readonly Atom[];
  /** Canonical text of the term. */
  readonly key: string;
}

/** A non-constant symbolic expression in canonical form; build it with the functions below. */
export class DimExpr {
  /** The terms of the sum, in canonical order. */
  readonly terms: readonly Term[];
  /** Canonical text: two expressions are equal exactly when their keys are. */
  readonly key: string;

  /** An expression from terms already in canonical form. */
  constructor(terms: readonly Term[]) {
    this.terms = terms;
    this.key = formatTerms(terms);
  }

  /** The canonical text, e.g. `S+P`. */
  toString(): string {
    return this.key;
  }
}

/** Values of symbols, by name. */
export type Bindings = ReadonlyMap<string, number>;

function termKey(atoms: readonly Atom[]): string {
  return atoms.map((a) => a.key).join("*");
}

function formatTerms(terms: readonly Term[]): string {
  let out = "";
  for (const t of terms) {
    const neg = t.coef < 0;
    const abs = Math.abs(t.coef);
    let body: string;
    if (t.atoms.length === 0) body = String(abs);
    else body = abs === 1 ? t.key : `${abs}*${t.key}`;
    if (out === "") out = neg ? `-${body}` : body;
    else out += neg ? `-${body}` : `+${body}`;
  }
  return out;
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function poly(d: Dim): readonly Term[] {
  if (typeof d === "number") return d === 0 ? [] : [{ coef: d, atoms: [], key: "" }];
  return d.terms;
}

function fromPoly(terms: readonly Term[]): Dim {
  const merged = new Map<string, Term>();
  for (const t of terms) {
    const prev = merged.get(t.key);
    merged.set(t.key, prev ? { ...prev, coef: prev.coef + t.coef } : t);
  }
  const kept = [...merged.values()].filter((t) => t.coef !== 0);
  // Symbolic terms first (sorted by key), the constant last: `P+S+1`.
  kept.sort((a, b) =>
    a.atoms.length === 0 ? 1 : b.atoms.length === 0 ? -1 : compareKeys(a.key, b.key)
  );
  if (kept.length === 0) return 0;
  if (kept.length === 1 && kept[0]!.atoms.length === 0) return kept[0]!.coef;
  return new DimExpr(kept);
}

function atomDim(atom: Atom): DimExpr {
  return new DimExpr([{ coef: 1, atoms: [atom], key: atom.key }]);
}

/** The symbol `name` as a dimension. */
export function sym(name: string): DimExpr {
  return atomDim({ kind: "sym", name, key: name });
}

/** The name of `d` when it is a bare symbol (`S`, not `2*S` nor `S+1`), else null. */
export function symbolOf(d: Dim): string | null {
  if (typeof d === "number" || d.terms.length !== 1) return null;
  const t = d.terms[0]!;
  const a = t.atoms.length === 1 ? t.atoms[0]! : null;
  return t.coef === 1 && a?.kind === "sym" ? a.name : null;
}

export function isConcrete(d: Dim): d is number {
  return typeof d === "number";
}

export function dimAdd(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a + b;
  return fromPoly([...poly(a), ...poly(b)]);
}

export function dimNeg(a: Dim): Dim {
  return dimMul(a, -1);
}

export function dimSub(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return dimAdd(a, dimNeg(b));
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") return a * b;
  const out: Term[] = [];
  for (const x of poly(a)) {
    for (const y of poly(b)) {
      const atoms = [...x.atoms, ...y.atoms].sort((p, q) => compareKeys(p.key, q.key));
      out.push({ coef: x.coef * y.coef, atoms, key: termKey(atoms) });
    }
  }
  return fromPoly(out);
}

/**
 * Integer division by a constant, truncating toward zero like tract's `TDim::Div`
 * (dimensions are non-negative, where this is also floor division).
 *
 * @throws {RangeError} when the divisor is symbolic or zero
 */
export function dimDiv(a: Dim, b: Dim): Dim {
  if (typeof b !== "number") {
    if (typeof a !== "number" && a.key === b.key) return 1;
    throw new RangeError(`Cannot divide ${dimToString(a)} by the symbolic ${b.key}`);
  }
  if (b === 0) throw new RangeError(`Division of ${dimToString(a)} by zero`);
  if (typeof a === "number") return Math.trunc(a / b);
  if (b === 1) return a;
  if (b === -1) return dimNeg(a);
  if (a.terms.every((t) => t.coef % b === 0)) {
    return fromPoly(a.terms.map((t) => ({ ...t, coef: t.coef / b })));
  }
  if (b < 0) return dimNeg(dimDiv(a, -b));
  return atomDim({ kind: "div", num: a, q: b, key: `(${a.key})/${b}` });
}

/** True when `d >= 0` for every non-negative value of its symbols. */
export function provablyNonNegative(d: Dim): boolean {
  if (typeof d === "number") return d >= 0;
  if (d.terms.every((t) => t.coef >= 0 && t.atoms.every(atomNonNegative))) return true;
  if (divFreeLowerBoundNonNegative(d)) return true;
  return shiftedNonNegative(d);
}

let LOWER_BOUNDS: ReadonlyMap<string, number> = new Map();

/**
 * Runs `fn` with symbols assumed to be at least their bound (e.g. `S >= 1` from a
 * `tract_assert`), which lets `min`/`max` and comparisons simplify further.
 */
export function withLowerBounds<T>(bounds: ReadonlyMap<string, number>, fn: () => T): T {
  const previous = LOWER_BOUNDS;
  LOWER_BOUNDS = bounds;
  try {
    return fn();
  } finally {
    LOWER_BOUNDS = previous;
  }
}

/** Checks `d` with each bounded symbol `X` written `X' + bound` (X' >= 0). */
function shiftedNonNegative(d: DimExpr): boolean {
  const bounds = LOWER_BOUNDS;
  const shift = new Map<string, Dim>();
  for (const name of dimSymbols(d)) {
    const lb = bounds.get(name);
    if (lb !== undefined && lb > 0) shift.set(name, dimAdd(sym(name), lb));
  }
  if (shift.size === 0) return false;
  return withLowerBounds(new Map(), () => provablyNonNegative(substitute(d, shift)));
}

/**
 * Replaces each `c*(a)/q` term by a lower bound without division (`c*a/q` when c < 0,
 * `c*(a-q+1)/q` when c > 0), scaled by the product of the divisors, and tries again.
 */
function divFreeLowerBoundNonNegative(d: DimExpr): boolean {
  const divs = d.terms.filter((t) => t.atoms.length === 1 && t.atoms[0]!.kind === "div");
  if (divs.length === 0) return false;
  let scale = 1;
  for (const t of divs) scale *= (t.atoms[0] as { q: number }).q;
  let bound: Dim = 0;
  for (const t of d.terms) {
    const atom = t.atoms[0];
    if (t.atoms.length === 1 && atom!.kind === "div") {
      const q = atom!.q;
      const num = t.coef < 0 ? atom!.num : dimSub(atom!.num, q - 1);
      bound = dimAdd(bound, dimMul(num, (t.coef * scale) / q));
    } else {
      bound = dimAdd(bound, dimMul(fromPoly([t]), scale));
    }
  }
  return typeof bound === "number"
    ? bound >= 0
    : bound.terms.every((t) => t.coef >= 0 && t.atoms.every(atomNonNegative));
}

function atomNonNegative(a: Atom): boolean {
  if (a.kind === "sym") return true;
  if (a.kind === "div") return provablyNonNegative(a.num);
  return a.kind === "max" ? a.args.some(provablyNonNegative) : a.args.every(provablyNonNegative);
}

function argsAtom(kind: "min" | "max" | "broadcast", args: Dim[]): DimExpr {
  args.sort((x, y) => compareKeys(dimToString(x), dimToString(y)));
  return atomDim({ kind, args, key: `${kind}(${args.map(dimToString).join(",")})` });
}

function minMax(kind: "min" | "max", a: Dim, b: Dim): Dim {
  if (typeof a === "number" && typeof b === "number") {
    return kind === "min" ? Math.min(a, b) : Math.max(a, b);
  }
  const aMinusB = dimSub(a, b);
  if (provablyNonNegative(aMinusB)) return kind === "min" ? b : a;
  if (provablyNonNegative(dimNeg(aMinusB))) return kind === "min" ? a : b;
  return argsAtom(kind, [a, b]);
}

export function dimMin(a: Dim, b: Dim): Dim {
  return minMax("min", a, b);
}

export function dimMax(a: Dim, b: Dim): Dim {
  return minMax("max", a, b);
}

/**
 * The numpy broadcast of two dims (tract's `TDim::Broadcast`): 1 gives way to the other, equal
 * dims are themselves, and `a` with `min(a, ...)` is `a` when every argument of the `min` is
 * provably at least 1. Otherwise it stays a term that checks, once its symbols have values,
 * that they are compatible: unlike `max`, it asserts.
 *
 * @throws {RangeError} when two different constants other than 1 meet
 */
export function dimBroadcast(a: Dim, b: Dim): Dim {
  if (a === 1) return b;
  if (b === 1 || dimEquals(a, b)) return a;
  if (typeof a === "number" && typeof b === "number") {
    throw new RangeError(`Cannot broadcast ${a} against ${b}`);
  }
  const terms: Dim[] = [];
  for (const d of [a, b]) {
    const atom = broadcastAtom(d);
    for (const t of atom ? atom.args : [d]) {
      if (t !== 1 && !terms.some((u) => dimEquals(u, t))) terms.push(t);
    }
  }
  if (terms.length === 1) return terms[0]!;
  if (terms.length === 2) {
    const [x, y] = terms as [Dim, Dim];
    if (absorbs(x, y)) return x;
    if (absorbs(y, x)) return y;
  }
  return argsAtom("broadcast", terms);
}

/** Whether `m` is a `min(x, ...)` whose arguments are all provably at least 1. */
function absorbs(x: Dim, m: Dim): boolean {
  const min = minAtom(m);
  return min !== null && min.args.some((t) => dimEquals(t, x)) &&
    min.args.every((t) => provablyNonNegative(dimSub(t, 1)));
}

function loneAtom(d: Dim): Atom | null {
  if (typeof d === "number" || d.terms.length !== 1) return null;
  const t = d.terms[0]!;
  return t.coef === 1 && t.atoms.length === 1 ? t.atoms[0]! : null;
}

function broadcastAtom(d: Dim): { readonly args: readonly Dim[] } | null {
  const a = loneAtom(d);
  return a?.kind === "broadcast" ? a : null;
}

function minAtom(d: Dim): { readonly args: readonly Dim[] } | null {
  const a = loneAtom(d);
  return a?.kind === "min" ? a : null;
}

export function dimEquals(a: Dim, b: Dim): boolean {
  if (typeof a === "number" || typeof b === "number") return a === b;
  return a.key === b.key;
}

export function dimToString(d: Dim): string {
  return typeof d === "number" ? String(d) : d.key;
}

export function shapeToString(shape: readonly Dim[]): string {
  return `[${shape.map(dimToString).join(", ")}]`;
}

/** Names of the symbols `d` depends on. */
export function dimSymbols(d: Dim, into: Set<string> = new Set()): Set<string> {
  if (typeof d === "number") return into;
  for (const t of d.terms) {
    for (const a of t.atoms) {
      if (a.kind === "sym") into.add(a.name);
      else if (a.kind === "div") dimSymbols(a.num, into);
      else for (const x of a.args) dimSymbols(x, into);
    }
  }
  return into;
}

/**
 * The value of `d` with its symbols bound.
 *
 * @throws {RangeError} when a symbol has no value
 */
export function evalDim(d: Dim, bindings: Bindings): number {
  if (typeof d === "number") return d;
  let total = 0;
  for (const t of d.terms) {
    let v = t.coef;
    for (const a of t.atoms) v *= evalAtom(a, bindings);
    total += v;
  }
  return total;
}

function evalAtom(a: Atom, bindings: Bindings): number {
  if (a.kind === "sym") {
    const v = bindings.get(a.name);
    if (v === undefined) throw new RangeError(`Symbol ${a.name} has no value`);
    return v;
  }
  if (a.kind === "div") return Math.trunc(evalDim(a.num, bindings) / a.q);
  const values = a.args.map((x) => evalDim(x, bindings));
  if (a.kind === "broadcast") return values.reduce((x, y) => dimBroadcast(x, y) as number, 1);
  return a.kind === "min" ? Math.min(...values) : Math.max(...values);
}

/** Substitutes the bound symbols only, keeping the others symbolic. */
export function substitute(d: Dim, bindings: ReadonlyMap<string, Dim>): Dim {
  if (typeof d === "number") return d;
  let out: Dim = 0;
  for (const t of d.terms) {
    let v: Dim = t.coef;
    for (const a of t.atoms) {
      let x: Dim;
      if (a.kind === "sym") x = bindings.get(a.name) ?? atomDim(a);
      else if (a.kind === "div") x = dimDiv(substitute(a.num, bindings), a.q);
      else {
        const args = a.args.map((y) => substitute(y, bindings));
        const kind = a.kind;
        x = kind === "broadcast"
          ? args.reduce(dimBroadcast)
          : args.reduce((p, q) => minMax(kind, p, q));
      }
      v = dimMul(v, x);
    }
    out = dimAdd(out, v);
  }
  return out;
}
