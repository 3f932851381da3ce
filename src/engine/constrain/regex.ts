/**
 * Regular expressions (ECMAScript syntax, matched whole) as byte grammars: what
 * `structured_outputs.regex` and a JSON schema's `pattern` constrain generation with.
 */
import { ByteClass, bytesOf, type Grammar, GrammarBuilder, type Term } from "./grammar.ts";

/** A closed range of code points. */
export type Range = readonly [number, number];

/**
 * A parsed expression: one character of a set, a sequence, alternatives, a repetition, or (in
 * a grammar of named rules) a reference to one of them.
 */
export type Node =
  | { readonly kind: "set"; readonly ranges: readonly Range[] }
  | { readonly kind: "seq"; readonly items: readonly Node[] }
  | { readonly kind: "alt"; readonly options: readonly Node[] }
  | { readonly kind: "repeat"; readonly node: Node; readonly min: number; readonly max: number }
  | { readonly kind: "ref"; readonly rule: number };

/** Most repetitions a bounded quantifier may ask for (each bound unrolls into rules). */
export const MAX_REPEAT = 1000;
export const MAX_CODE_POINT = 0x10ffff;

const DIGITS: readonly Range[] = [[0x30, 0x39]];
const WORD: readonly Range[] = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
/** ECMAScript's white space and line terminators. */
const SPACE: readonly Range[] = [
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];
/** The classes written `\d`, `\D`, `\w`, `\W`, `\s`, `\S`. */
const SHORTHANDS: Readonly<Record<string, readonly Range[]>> = {
  d: DIGITS,
  D: complement(DIGITS),
  w: WORD,
  W: complement(WORD),
  s: SPACE,
  S: complement(SPACE),
};

/** The characters written `\n`, `\r`, `\t`, `\f`, `\v`, `\0`. */
const CONTROLS: Readonly<Record<string, number>> = {
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
  f: 0x0c,
  v: 0x0b,
  "0": 0,
};

/** What `.` does not match: the line terminators. */
const LINE_ENDS: readonly Range[] = [[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]];

/**
 * Compiles `pattern` into a grammar of the UTF-8 texts it matches whole (`^` and `$` at its
 * ends are allowed and change nothing).
 *
 * Supported: literals, `.`, escapes (`\d \D \w \W \s \S \n \r \t \f \v \0 \xHH \uHHHH \u{H...}`
 * and escaped punctuation), classes `[...]` with ranges and negation, groups (`(...)`,
 * `(?:...)`, `(?<name>...)`, `(?P<name>...)`), `|`, and the quantifiers `* + ? {n} {n,} {n,m}`
 * (lazy or not: the same texts). `.`, `\s` and negated classes follow ECMAScript (`.` matches
 * no line terminator; `\d` and `\w` are ASCII).
 *
 * @param where named in errors, e.g. `structured_outputs.regex`
 * @throws {TypeError} naming the construct and its offset for what is not supported
 *   (backreferences, lookaround, `\b`, anchors inside the pattern) or malformed
 * @throws {RangeError} when the pattern matches nothing, or repeats more than 1000 times
 */
export function compileRegex(pattern: string, where = "regex"): Grammar {
  const builder = new GrammarBuilder();
  return builder.build(regexRule(builder, pattern, where));
}

/**
 * The rule of the texts `pattern` matches whole, in `builder` (see {@link compileRegex});
 * with `jsonString`, of those texts as the inside of a JSON string (`"`, `\` and control
 * characters escaped).
 */
export function regexRule(
  builder: GrammarBuilder,
  pattern: string,
  where = "regex",
  jsonString = false,
): number {
  const node = new Parser(pattern, where).parse();
  const terms = new NodeTerms(builder, where, jsonString).terms(node);
  return builder.rule(`/${pattern}/`, terms);
}

/** Reads a pattern into a {@link Node}. */
class Parser {
  readonly #pattern: string;
  readonly #where: string;
  #at = 0;
  /** Groups open around the current position. */
  #depth = 0;

  constructor(pattern: string, where: string) {
    this.#pattern = pattern;
    this.#where = where;
  }

  parse(): Node {
    const node = this.#alternatives();
    if (this.#at < this.#pattern.length) {
      throw this.#error(`unmatched '${this.#peek()}'`);
    }
    return node;
  }

  #alternatives(): Node {
    const options = [this.#sequence()];
    while (this.#peek() === "|") {
      this.#at++;
      options.push(this.#sequence());
    }
    return options.length === 1 ? options[0]! : { kind: "alt", options };
  }

  #sequence(): Node {
    const items: Node[] = [];
    // The pattern is matched whole: anchors may only stand at the ends of its alternatives.
    if (this.#peek() === "^" && this.#depth === 0) this.#at++;
    for (;;) {
      const c = this.#peek();
      if (c === undefined || c === "|" || c === ")") break;
      if (c === "$" || c === "^") {
        this.#at++;
        const end = this.#peek();
        if (c === "^" || this.#depth > 0 || (end !== undefined && end !== "|")) {
          throw this.#error(
            `'${c}' inside the pattern (anchors only at its ends: it is matched whole)`,
            this.#at - 1,
          );
        }
        continue;
      }
      items.push(this.#quantified(this.#atom()));
    }
    return items.length === 1 ? items[0]! : { kind: "seq", items };
  }

  #quantified(node: Node): Node {
    const start = this.#at;
    const c = this.#peek();
    let min: number;
    let max: number;
    const bounds = /^\{(\d+)(,(\d*))?\}/.exec(this.#pattern.slice(this.#at));
    if (c === "*") [min, max] = [0, Infinity];
    else if (c === "+") [min, max] = [1, Infinity];
    else if (c === "?") [min, max] = [0, 1];
    else if (bounds) {
      min = Number(bounds[1]);
      max = bounds[2] === undefined ? min : bounds[3] === "" ? Infinity : Number(bounds[3]);
      this.#at += bounds[0].length - 1;
      if (max < min) throw this.#error(`${bounds[0]}: the bounds are out of order`, start);
      if (Math.max(min, max === Infinity ? 0 : max) > MAX_REPEAT) {
        throw new RangeError(
          `${this.#where}: ${bounds[0]} at offset ${start} repeats more than ${MAX_REPEAT} times`,
        );
      }
    } else return node;
    this.#at++;
    // A lazy or possessive quantifier matches the same texts.
    if (this.#peek() === "?" || this.#peek() === "+") this.#at++;
    const after = this.#peek();
    if (
      after === "*" || after === "+" || after === "?" ||
      after === "{" && /^\{\d/.test(this.#pattern.slice(this.#at))
    ) {
      throw this.#error(`'${after}' with nothing to repeat`);
    }
    return { kind: "repeat", node, min, max };
  }

  #atom(): Node {
    const start = this.#at;
    const c = this.#next()!; // a sequence stops at the end
    switch (c) {
      case "(":
        return this.#group(start);
      case "[":
        return { kind: "set", ranges: this.#class(start) };
      case ".":
        return { kind: "set", ranges: complement(LINE_ENDS) };
      case "\\":
        return { kind: "set", ranges: this.#escape(start, false) };
      case "*":
      case "+":
      case "?":
        throw this.#error(`'${c}' with nothing to repeat`, start);
      case "{":
        if (/^\d+(,\d*)?\}/.test(this.#pattern.slice(this.#at))) {
          throw this.#error("a quantifier with nothing to repeat", start);
        }
        return literal(c);
      default:
        return literal(c);
    }
  }

  #group(start: number): Node {
    if (this.#pattern.startsWith("?", this.#at)) {
      const rest = this.#pattern.slice(this.#at);
      const named = /^\?P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
      if (rest.startsWith("?:")) this.#at += 2;
      else if (named) this.#at += named[0].length;
      else {
        const what = /^\?<?[=!]/.test(rest) ? "lookaround" : "this group syntax";
        throw this.#error(`${what} '(${rest.slice(0, 3)}' is not supported`, start);
      }
    }
    this.#depth++;
    const inner = this.#alternatives();
    this.#depth--;
    if (this.#next() !== ")") throw this.#error("unclosed '('", start);
    return inner;
  }

  /** The ranges of a class whose '[' is at `start`. */
  #class(start: number): Range[] {
    const negated = this.#peek() === "^";
    if (negated) this.#at++;
    const ranges: Range[] = [];
    for (;;) {
      const c = this.#peek();
      if (c === undefined) throw this.#error("unclosed '['", start);
      if (c === "]") {
        this.#at++;
        break;
      }
      const itemStart = this.#at;
      const low = this.#classItem();
      if (
        this.#peek() === "-" && this.#pattern[this.#at + 1] !== "]" &&
        this.#at + 1 < this.#pattern.length
      ) {
        this.#at++;
        const high = this.#classItem();
        if (
          low.length !== 1 || high.length !== 1 || low[0]![0] !== low[0]![1] ||
          high[0]![0] !== high[0]![1]
        ) {
          throw this.#error("a range between a class and a character", itemStart);
        }
        if (high[0]![0] < low[0]![0]) throw this.#error("a range out of order", itemStart);
        ranges.push([low[0]![0], high[0]![0]]);
      } else ranges.push(...low);
    }
    const set = normalize(ranges);
    return negated ? complement(set) : set;
  }

  /** One character or escape class of a `[...]` class. */
  #classItem(): Range[] {
    const start = this.#at;
    const c = this.#next()!;
    if (c === "\\") return this.#escape(start, true);
    const cp = c.codePointAt(0)!;
    return [[cp, cp]];
  }

  /** The ranges of the escape whose '\' is at `start`. */
  #escape(start: number, inClass: boolean): Range[] {
    const c = this.#next();
    const one = (cp: number): Range[] => [[cp, cp]];
    if (c === undefined) throw this.#error("'\\' at the end", start);
    const shorthand = SHORTHANDS[c];
    if (shorthand !== undefined) return [...shorthand];
    const control = CONTROLS[c];
    if (control !== undefined) return one(control);
    switch (c) {
      case "b":
        if (inClass) return one(0x08);
        throw this.#error("word boundaries ('\\b') are not supported", start);
      case "x":
        return one(this.#hex(start, 2));
      case "u":
        if (this.#peek() === "{") {
          const m = /^\{([0-9A-Fa-f]{1,6})\}/.exec(this.#pattern.slice(this.#at));
          if (!m || parseInt(m[1]!, 16) > MAX_CODE_POINT) {
            throw this.#error("a malformed '\\u{...}'", start);
          }
          this.#at += m[0].length;
          return one(parseInt(m[1]!, 16));
        }
        return one(this.#hex(start, 4));
      default:
        if (/[1-9]/.test(c) || c === "k") {
          throw this.#error(`backreferences ('\\${c}') are not supported`, start);
        }
        if (/[A-Za-z]/.test(c)) throw this.#error(`the escape '\\${c}' is not supported`, start);
        return one(c.codePointAt(0)!);
    }
  }

  #hex(start: number, digits: number): number {
    const text = this.#pattern.slice(this.#at, this.#at + digits);
    if (!new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(text)) {
      throw this.#error(`a malformed '\\${digits === 2 ? "x" : "u"}' escape`, start);
    }
    this.#at += digits;
    return parseInt(text, 16);
  }

  #peek(): string | undefined {
    return this.#at < this.#pattern.length
      ? String.fromCodePoint(this.#pattern.codePointAt(this.#at)!)
      : undefined;
  }

  #next(): string | undefined {
    const c = this.#peek();
    if (c !== undefined) this.#at += c.length;
    return c;
  }

  #error(message: string, at = this.#at): TypeError {
    return new TypeError(`${this.#where}: ${message} at offset ${at}`);
  }
}

function literal(c: string): Node {
  const cp = c.codePointAt(0)!;
  return { kind: "set", ranges: [[cp, cp]] };
}

/** Sorted, merged ranges. */
function normalize(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out.at(-1);
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** The code points (surrogates aside) not in `ranges`. */
export function complement(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of normalize(ranges)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
  return out;
}

/** Turns nodes (of a regex, or of a grammar's rules) into grammar terms. */
export class NodeTerms {
  readonly #builder: GrammarBuilder;
  readonly #where: string;
  readonly #jsonString: boolean;
  readonly #sets = new Map<string, Term>();

  /** Terms added to `builder`; with `jsonString`, characters as a JSON string writes them. */
  constructor(builder: GrammarBuilder, where: string, jsonString = false) {
    this.#builder = builder;
    this.#where = where;
    this.#jsonString = jsonString;
  }

  /** The terms that match what `node` matches. */
  terms(node: Node): Term[] {
    switch (node.kind) {
      case "ref":
        return [node.rule];
      case "set":
        return [this.#set(node.ranges)];
      case "seq":
        return node.items.flatMap((item) => this.terms(item));
      case "alt":
        return [this.#builder.rule("|", ...node.options.map((o) => this.terms(o)))];
      case "repeat": {
        const inner = this.terms(node.node);
        const one = inner.length === 1 ? inner[0]! : this.#builder.rule("( )", inner);
        return [this.#builder.repeat(`{${node.min},${node.max}}`, one, node.min, node.max)];
      }
    }
  }

  /** One character of `ranges`: a byte class, or a rule of UTF-8 byte sequences. */
  #set(ranges: readonly Range[]): Term {
    const valid = normalize(ranges).flatMap(([lo, hi]) => withoutSurrogates(lo, hi));
    if (valid.length === 0) {
      throw new RangeError(`${this.#where}: a character class matches no character`);
    }
    const key = valid.map(([lo, hi]) => `${lo}-${hi}`).join(",");
    let term = this.#sets.get(key);
    if (term === undefined) {
      const escaped = this.#jsonString ? intersect(valid, JSON_ESCAPED) : [];
      const plain = this.#jsonString ? intersect(valid, complement(JSON_ESCAPED)) : valid;
      const sequences = [
        ...plain.flatMap(([lo, hi]) => utf8Sequences(lo, hi)),
        ...escaped.flatMap(([lo, hi]) =>
          Array.from({ length: hi - lo + 1 }, (_, i) => bytesOf(jsonEscape(lo + i)))
        ),
      ];
      term = sequences.length === 1 && sequences[0]!.length === 1
        ? sequences[0]![0]!
        : this.#builder.rule(`[${key}]`, ...sequences);
      this.#sets.set(key, term);
    }
    return term;
  }
}

/** The characters a JSON string writes escaped: the quote, the backslash, control characters. */
const JSON_ESCAPED: readonly Range[] = [[0, 0x1f], [0x22, 0x22], [0x5c, 0x5c]];

/** How JSON writes the character `cp` inside a string. */
function jsonEscape(cp: number): string {
  return JSON.stringify(String.fromCodePoint(cp)).slice(1, -1);
}

/** The code points in both `a` and `b`. */
function intersect(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const [lo, hi] of normalize(a)) {
    for (const [l, h] of normalize(b)) {
      if (Math.max(lo, l) <= Math.min(hi, h)) out.push([Math.max(lo, l), Math.min(hi, h)]);
    }
  }
  return out;
}

function withoutSurrogates(lo: number, hi: number): Range[] {
  const out: Range[] = [];
  if (lo < 0xd800) out.push([lo, Math.min(hi, 0xd7ff)]);
  if (hi > 0xdfff) out.push([Math.max(lo, 0xe000), hi]);
  return out;
}

/** Code points below which UTF-8 takes 1, 2, 3 and 4 bytes. */
const LENGTH_ENDS = [0x7f, 0x7ff, 0xffff, MAX_CODE_POINT];

/**
 * The UTF-8 encodings of code points lo..hi (no surrogates) as sequences of byte classes, each
 * byte's class a contiguous range: the range is cut where the encoding's length changes, then
 * where a continuation byte would otherwise not run its full span.
 */
function utf8Sequences(lo: number, hi: number): ByteClass[][] {
  const out: ByteClass[][] = [];
  const pending: Range[] = [[lo, hi]];
  while (pending.length > 0) {
    const [a, b] = pending.pop()!;
    const end = LENGTH_ENDS.find((e) => a <= e)!;
    if (b > end) {
      pending.push([end + 1, b], [a, end]);
      continue;
    }
    const length = LENGTH_ENDS.indexOf(end) + 1;
    let cut = false;
    for (let i = 1; i < length && !cut; i++) {
      const mask = (1 << (6 * i)) - 1;
      if ((a & ~mask) === (b & ~mask)) continue;
      if ((a & mask) !== 0) {
        pending.push([(a | mask) + 1, b], [a, a | mask]);
        cut = true;
      } else if ((b & mask) !== mask) {
        pending.push([b & ~mask, b], [a, (b & ~mask) - 1]);
        cut = true;
      }
    }
    if (cut) continue;
    const [x, y] = [encode(a), encode(b)];
    out.push(x.map((byte, i) => ByteClass.ranges([byte, y[i]!])));
  }
  return out;
}

function encode(cp: number): number[] {
  return [...new TextEncoder().encode(String.fromCodePoint(cp))];
}
