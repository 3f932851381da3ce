/**
 * GBNF, the grammar notation of llama.cpp (`grammars/README.md`), as byte grammars: what
 * `structured_outputs.grammar` (and llama.cpp's `grammar`) constrain generation with.
 *
 * ```
 * root   ::= answer "."
 * answer ::= "yes" | "no" | [0-9]+ ( "," [0-9]+ )*   # comments run to the line's end
 * ```
 */
import { type Grammar, GrammarBuilder } from "./grammar.ts";
import {
  complement,
  MAX_CODE_POINT,
  MAX_REPEAT,
  type Node,
  NodeTerms,
  type Range,
} from "./regex.ts";

/**
 * Compiles a GBNF grammar whose `root` rule a document must match.
 *
 * Supported: rules `name ::= ...` (names of letters, digits, `-` and `_`), string literals,
 * character classes `[...]` with ranges and `^`, `.` (any character), rule references,
 * groups, `|`, the quantifiers `* + ? {m} {m,} {m,n}`, escapes `\n \r \t \\ \" \[ \] \- \xHH
 * \uHHHH \UHHHHHHHH`, and `#` comments. A sequence ends at the end of its line unless it is
 * inside parentheses or follows `|` or `::=`.
 *
 * @param where named in errors, e.g. `structured_outputs.grammar`
 * @throws {TypeError} naming the line and column of a malformed construct, an undefined or
 *   twice defined rule, a missing `root`, or a rule that recurses before reading a character
 * @throws {RangeError} when the grammar matches nothing, or repeats more than 1000 times
 */
export function compileGbnf(text: string, where = "grammar"): Grammar {
  const builder = new GrammarBuilder();
  const parsed = new GbnfParser(text, where, builder).parse();
  const terms = new NodeTerms(builder, where);
  for (const [id, node] of parsed.bodies) {
    for (const option of node.kind === "alt" ? node.options : [node]) {
      builder.add(id, terms.terms(option));
    }
  }
  checkLeftRecursion(parsed, where);
  return builder.build(parsed.root);
}

/** The rules read: their ids by name, bodies by id, where each was first named. */
interface Parsed {
  readonly root: number;
  readonly names: ReadonlyMap<string, number>;
  readonly bodies: ReadonlyMap<number, Node>;
}

const NAME = /[A-Za-z0-9_-]/;

/** The characters written `\n`, `\r`, `\t` and the escaped punctuation. */
const ESCAPES: Readonly<Record<string, number>> = {
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
  "\\": 0x5c,
  '"': 0x22,
  "[": 0x5b,
  "]": 0x5d,
  "-": 0x2d,
  "^": 0x5e,
};

/** Reads GBNF text into rule bodies, declaring each rule in the builder as it is named. */
class GbnfParser {
  readonly #text: string;
  readonly #where: string;
  readonly #builder: GrammarBuilder;
  readonly #names = new Map<string, number>();
  /** Where each rule was first referred to, for an undefined one's error. */
  readonly #firstUse = new Map<string, number>();
  readonly #bodies = new Map<number, Node>();
  #at = 0;

  constructor(text: string, where: string, builder: GrammarBuilder) {
    this.#text = text;
    this.#where = where;
    this.#builder = builder;
  }

  parse(): Parsed {
    this.#space(true);
    while (this.#at < this.#text.length) {
      const start = this.#at;
      const name = this.#name();
      this.#space(false);
      if (!this.#text.startsWith("::=", this.#at)) throw this.#error("expected '::='");
      this.#at += 3;
      this.#space(true);
      const id = this.#rule(name, start);
      if (this.#bodies.has(id)) throw this.#error(`rule '${name}' is defined twice`, start);
      this.#bodies.set(id, this.#alternatives(false));
      const c = this.#text[this.#at];
      if (c !== undefined && c !== "\n" && c !== "\r") throw this.#error(`unexpected '${c}'`);
      this.#space(true);
    }
    for (const [name, id] of this.#names) {
      if (!this.#bodies.has(id)) {
        throw this.#error(`rule '${name}' is not defined`, this.#firstUse.get(name)!);
      }
    }
    const root = this.#names.get("root");
    if (root === undefined) throw this.#error("no 'root' rule", 0);
    return { root, names: this.#names, bodies: this.#bodies };
  }

  #rule(name: string, at: number): number {
    let id = this.#names.get(name);
    if (id === undefined) {
      id = this.#builder.declare(name);
      this.#names.set(name, id);
      this.#firstUse.set(name, at);
    }
    return id;
  }

  #alternatives(nested: boolean): Node {
    const options = [this.#sequence(nested)];
    while (this.#text[this.#at] === "|") {
      this.#at++;
      this.#space(true);
      options.push(this.#sequence(nested));
    }
    return options.length === 1 ? options[0]! : { kind: "alt", options };
  }

  #sequence(nested: boolean): Node {
    const items: Node[] = [];
    for (;;) {
      const c = this.#text[this.#at];
      if (c === undefined || c === "|" || c === ")" || c === "\n" || c === "\r") break;
      items.push(this.#quantified(this.#primary()));
      this.#space(nested);
    }
    return items.length === 1 ? items[0]! : { kind: "seq", items };
  }

  #primary(): Node {
    const start = this.#at;
    const c = this.#text[this.#at]!;
    if (c === '"') {
      this.#at++;
      const items: Node[] = [];
      while (this.#text[this.#at] !== '"') {
        if (this.#at >= this.#text.length) throw this.#error("unterminated string", start);
        const cp = this.#char();
        items.push({ kind: "set", ranges: [[cp, cp]] });
      }
      this.#at++;
      return { kind: "seq", items };
    }
    if (c === "[") return this.#class();
    if (c === ".") {
      this.#at++;
      return { kind: "set", ranges: [[0, MAX_CODE_POINT]] };
    }
    if (c === "(") {
      this.#at++;
      this.#space(true);
      const node = this.#alternatives(true);
      if (this.#text[this.#at] !== ")") throw this.#error("unclosed '('", start);
      this.#at++;
      return node;
    }
    if (NAME.test(c)) return { kind: "ref", rule: this.#rule(this.#name(), start) };
    throw this.#error(`unexpected '${c}'`);
  }

  #class(): Node {
    const start = this.#at++;
    const negated = this.#text[this.#at] === "^";
    if (negated) this.#at++;
    const ranges: Range[] = [];
    while (this.#text[this.#at] !== "]") {
      if (this.#at >= this.#text.length) throw this.#error("unclosed '['", start);
      const lo = this.#char();
      if (this.#text[this.#at] === "-" && this.#text[this.#at + 1] !== "]") {
        this.#at++;
        const hi = this.#char();
        if (hi < lo) throw this.#error("a range that runs backwards", start);
        ranges.push([lo, hi]);
      } else {
        ranges.push([lo, lo]);
      }
    }
    this.#at++;
    return { kind: "set", ranges: negated ? complement(ranges) : ranges };
  }

  /** One character of a string or class, escapes read. */
  #char(): number {
    const start = this.#at;
    const cp = this.#text.codePointAt(this.#at)!;
    this.#at += cp > 0xffff ? 2 : 1;
    if (cp !== 0x5c) return cp;
    const e = this.#text[this.#at++];
    if (e === undefined) throw this.#error("an escape at the end", start);
    if (e in ESCAPES) return ESCAPES[e]!;
    const digits = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
    const hex = this.#text.slice(this.#at, this.#at + digits);
    if (digits === 0 || !/^[0-9A-Fa-f]+$/.test(hex) || hex.length !== digits) {
      throw this.#error(`a malformed escape '\\${e}'`, start);
    }
    this.#at += digits;
    const value = parseInt(hex, 16);
    if (value > MAX_CODE_POINT) throw this.#error(`'\\${e}${hex}' is past Unicode`, start);
    return value;
  }

  #quantified(node: Node): Node {
    const c = this.#text[this.#at];
    const start = this.#at;
    let min: number;
    let max: number;
    if (c === "*" || c === "+" || c === "?") {
      this.#at++;
      [min, max] = c === "*" ? [0, Infinity] : c === "+" ? [1, Infinity] : [0, 1];
    } else if (c === "{") {
      const m = /^\{\s*(\d+)\s*(?:(,)\s*(\d*)\s*)?\}/.exec(this.#text.slice(this.#at));
      if (m === null) throw this.#error("a malformed '{m,n}'");
      this.#at += m[0].length;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
      if (max < min) throw this.#error(`'{${min},${max}}' has max below min`, start);
      if (Math.max(min, max === Infinity ? 0 : max) > MAX_REPEAT) {
        throw new RangeError(
          `${this.#where}: more than ${MAX_REPEAT} repetitions at ${this.#place(start)}`,
        );
      }
    } else {
      return node;
    }
    return { kind: "repeat", node, min, max };
  }

  #name(): string {
    const start = this.#at;
    while (this.#at < this.#text.length && NAME.test(this.#text[this.#at]!)) this.#at++;
    if (this.#at === start) throw this.#error("expected a rule name");
    return this.#text.slice(start, this.#at);
  }

  /** Skips spaces, tabs and comments, and line ends when `newlines`. */
  #space(newlines: boolean): void {
    for (;;) {
      const c = this.#text[this.#at];
      if (c === " " || c === "\t" || (newlines && (c === "\n" || c === "\r"))) {
        this.#at++;
      } else if (c === "#") {
        while (this.#at < this.#text.length && this.#text[this.#at] !== "\n") this.#at++;
      } else {
        return;
      }
    }
  }

  /** `line:column` (from 1) of offset `at`. */
  #place(at: number): string {
    const before = this.#text.slice(0, at).split("\n");
    return `${before.length}:${before.at(-1)!.length + 1}`;
  }

  #error(message: string, at = this.#at): TypeError {
    return new TypeError(`${this.#where}: ${message} at ${this.#place(at)}`);
  }
}

/**
 * Refuses a rule that can refer to itself before reading a character (`a ::= a "x"`): the
 * automaton would open it forever.
 */
function checkLeftRecursion(parsed: Parsed, where: string): void {
  const nullable = new Set<number>();
  const canBeEmpty = (node: Node): boolean => {
    switch (node.kind) {
      case "set":
        return false;
      case "ref":
        return nullable.has(node.rule);
      case "seq":
        return node.items.every(canBeEmpty);
      case "alt":
        return node.options.some(canBeEmpty);
      case "repeat":
        return node.min === 0 || canBeEmpty(node.node);
    }
  };
  for (let changed = true; changed;) {
    changed = false;
    for (const [id, body] of parsed.bodies) {
      if (!nullable.has(id) && canBeEmpty(body)) {
        nullable.add(id);
        changed = true;
      }
    }
  }
  /** The rules `node` may open before reading a character. */
  const firsts = (node: Node, out: Set<number>): void => {
    switch (node.kind) {
      case "ref":
        out.add(node.rule);
        return;
      case "seq":
        for (const item of node.items) {
          firsts(item, out);
          if (!canBeEmpty(item)) return;
        }
        return;
      case "alt":
        for (const option of node.options) firsts(option, out);
        return;
      case "repeat":
        firsts(node.node, out);
        return;
      case "set":
        return;
    }
  };
  const edges = new Map<number, Set<number>>();
  for (const [id, body] of parsed.bodies) {
    const out = new Set<number>();
    firsts(body, out);
    edges.set(id, out);
  }
  const nameOf = new Map([...parsed.names].map(([name, id]) => [id, name]));
  for (const id of parsed.bodies.keys()) {
    const seen = new Set<number>();
    const pending = [...edges.get(id)!];
    while (pending.length > 0) {
      const next = pending.pop()!;
      if (next === id) {
        throw new TypeError(
          `${where}: rule '${
            nameOf.get(id)
          }' refers to itself before reading a character (left recursion)`,
        );
      }
      if (seen.has(next)) continue;
      seen.add(next);
      pending.push(...edges.get(next)!);
    }
  }
}
