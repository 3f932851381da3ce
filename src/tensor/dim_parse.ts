/**
 * Dims and `tract_assert` lines as text, read with the grammar of tract's
 * `data/src/dim/parse.rs`, and assertions checked against bound symbols.
 */
import {
  type Bindings,
  type Dim,
  dimAdd,
  dimBroadcast,
  dimDiv,
  dimMax,
  dimMin,
  dimMul,
  dimNeg,
  dimSub,
  dimSymbols,
  evalDim,
  sym,
} from "./dim.ts";

class DimParser {
  readonly #text: string;
  #pos = 0;

  constructor(text: string) {
    this.#text = text;
  }

  parseAll(): Dim {
    const d = this.expr();
    this.#skip();
    if (this.#pos < this.#text.length) this.#fail("unexpected text");
    return d;
  }

  #skip(): void {
    while (this.#pos < this.#text.length && /\s/.test(this.#text[this.#pos]!)) this.#pos++;
  }

  #fail(what: string): never {
    throw new SyntaxError(
      `Invalid dimension expression '${this.#text}': ${what} at offset ${this.#pos}`,
    );
  }

  peek(): string {
    this.#skip();
    return this.#text[this.#pos] ?? "";
  }

  take(s: string): boolean {
    this.#skip();
    if (this.#text.startsWith(s, this.#pos)) {
      this.#pos += s.length;
      return true;
    }
    return false;
  }

  get rest(): string {
    return this.#text.slice(this.#pos);
  }

  expr(): Dim {
    let d = this.#term();
    for (;;) {
      if (this.take("+")) d = dimAdd(d, this.#term());
      else if (this.take("-")) d = dimSub(d, this.#term());
      else return d;
    }
  }

  #term(): Dim {
    let d = this.#unary();
    for (;;) {
      if (this.take("*")) d = dimMul(d, this.#unary());
      else if (this.take("/")) {
        const q = this.#unary();
        if (typeof q !== "number") this.#fail("the divisor must be an integer");
        d = dimDiv(d, q);
      } else return d;
    }
  }

  #unary(): Dim {
    if (this.take("-")) return dimNeg(this.#unary());
    return this.#primary();
  }

  #primary(): Dim {
    this.#skip();
    if (this.take("(")) {
      const d = this.expr();
      if (!this.take(")")) this.#fail("expected ')'");
      return d;
    }
    const num = /^[0-9]+/.exec(this.rest);
    if (num) {
      this.#pos += num[0].length;
      return Number(num[0]);
    }
    const id = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(this.rest);
    if (!id) this.#fail("expected a number or a symbol");
    this.#pos += id[0].length;
    const name = id[0];
    if (this.peek() === "(" && ["min", "max", "floor", "broadcast"].includes(name)) {
      this.take("(");
      const args = [this.expr()];
      while (this.take(",")) args.push(this.expr());
      if (!this.take(")")) this.#fail("expected ')'");
      if (name === "min") return args.reduce(dimMin);
      if (name === "max") return args.reduce(dimMax);
      if (name === "broadcast") return args.reduce(dimBroadcast);
      return args[0]!;
    }
    return sym(name);
  }
}

/**
 * Parses a dimension expression such as `S+P`, `2*S`, `(S+1)/2`, `min(S, 4)`.
 *
 * @throws {SyntaxError} when the text is not an expression
 */
export function parseDim(text: string): Dim {
  return new DimParser(text).parseAll();
}

/** A comparison of a `tract_assert` line. */
export type Comparison = "==" | "<=" | ">=" | "<" | ">";

/** One `tract_assert` constraint; a scenario assert only applies in its scenario. */
export interface Assertion {
  /** The assertion as written. */
  readonly text: string;
  /** The scenario it applies in (`tg`, `pp`), or null for all. */
  readonly scenario: string | null;
  /** The left-hand side. */
  readonly left: Dim;
  /** The comparison. */
  readonly op: Comparison;
  /** The right-hand side. */
  readonly right: Dim;
}

/**
 * Parses the text of `extension tract_assert <expr>;`, e.g. `S+P < 512` or `tg: S==1`.
 *
 * @throws {SyntaxError} when the text is not a comparison
 */
export function parseAssertion(text: string): Assertion {
  let body = text.trim();
  let scenario: string | null = null;
  const colon = body.indexOf(":");
  if (colon >= 0) {
    scenario = body.slice(0, colon).trim();
    body = body.slice(colon + 1).trim();
  }
  const m = /^(.*?)(==|<=|>=|<|>)(.*)$/.exec(body);
  if (!m) throw new SyntaxError(`Invalid tract_assert '${text}': expected a comparison`);
  return {
    text: body,
    scenario,
    left: parseDim(m[1]!),
    op: m[2] as Comparison,
    right: parseDim(m[3]!),
  };
}

/**
 * Checks `assertion` with `bindings`.
 *
 * @throws {RangeError} naming the assertion and the symbol values when it does not hold
 */
export function checkAssertion(assertion: Assertion, bindings: Bindings): void {
  const l = evalDim(assertion.left, bindings);
  const r = evalDim(assertion.right, bindings);
  const ok = assertion.op === "=="
    ? l === r
    : assertion.op === "<="
    ? l <= r
    : assertion.op === ">="
    ? l >= r
    : assertion.op === "<"
    ? l < r
    : l > r;
  if (ok) return;
  const used = new Set<string>();
  dimSymbols(assertion.left, used);
  dimSymbols(assertion.right, used);
  const values = [...used].sort().map((s) => `${s}=${bindings.get(s)}`).join(", ");
  throw new RangeError(`Assertion ${assertion.text} failed with ${values}`);
}
