/**
 * A context-free grammar over bytes: each rule is a list of alternatives, each alternative a
 * sequence of byte classes and rule references. Built with {@link GrammarBuilder}, run by
 * `Automaton` (automaton.ts).
 */

/** One element of a sequence: a byte class (256 flags) or a rule id. */
export type Term = ByteClass | number;

/** The bytes one position accepts. */
export class ByteClass {
  /** (256,) 1 where the byte is accepted. */
  readonly accepts: Uint8Array;
  #key: string | undefined;

  /** A class accepting the bytes set to 1 in `accepts` (256,). */
  constructor(accepts: Uint8Array) {
    this.accepts = accepts;
  }

  /** A string equal for equal classes (the 256 flags as hex words). */
  get key(): string {
    if (this.#key === undefined) {
      const words = new Uint32Array(8);
      for (let b = 0; b < 256; b++) if (this.accepts[b] === 1) words[b >> 5]! |= 1 << (b & 31);
      this.#key = Array.from(words, (w) => w.toString(16)).join(",");
    }
    return this.#key;
  }

  /** The bytes lo..hi (inclusive) and the other ranges given. */
  static ranges(...ranges: readonly (readonly [number, number])[]): ByteClass {
    const accepts = new Uint8Array(256);
    for (const [lo, hi] of ranges) accepts.fill(1, lo, hi + 1);
    return new ByteClass(accepts);
  }

  /** Exactly the bytes listed. */
  static of(...bytes: readonly number[]): ByteClass {
    if (bytes.length === 1) return single(bytes[0]!);
    const accepts = new Uint8Array(256);
    for (const b of bytes) accepts[b] = 1;
    return new ByteClass(accepts);
  }

  /** The bytes of `chars` (ASCII). */
  static chars(chars: string): ByteClass {
    return ByteClass.of(...[...chars].map((c) => c.charCodeAt(0)));
  }

  /** This class without the bytes of `other`. */
  minus(other: ByteClass): ByteClass {
    return new ByteClass(this.accepts.map((a, b) => a & (other.accepts[b]! ^ 1)));
  }
}

const singles: ByteClass[] = [];

/** The class of one byte, shared. */
function single(byte: number): ByteClass {
  let c = singles[byte];
  if (c === undefined) {
    const accepts = new Uint8Array(256);
    accepts[byte] = 1;
    c = singles[byte] = new ByteClass(accepts);
  }
  return c;
}

/** Position code of the end of an alternative. */
export const END = -1;

/**
 * A compiled grammar. Positions index `ops`: `ops[p] >= 0` refers to rule `ops[p]`, `END` ends
 * an alternative, and `ops[p] <= -2` is byte class `-2 - ops[p]`.
 */
export interface Grammar {
  /** (positions,) what each position holds. */
  readonly ops: Int32Array;
  /** The byte classes, each (256,). */
  readonly classes: readonly Uint8Array[];
  /** Per rule, the first position of each alternative. */
  readonly alternatives: readonly Int32Array[];
  /** Per rule, its name (for errors and debugging). */
  readonly names: readonly string[];
  /** (positions,) fewest bytes from this position to the end of its alternative. */
  readonly rest: Float64Array;
  /** The rule a document must match. */
  readonly start: number;
}

/** Collects rules, then compiles them into a {@link Grammar}. */
export class GrammarBuilder {
  readonly #names: string[] = [];
  readonly #rules: Term[][][] = [];
  readonly #literals = new Map<string, number>();

  /** Declares a rule (defined later with `define` or `add`); returns its id. */
  declare(name: string): number {
    this.#names.push(name);
    this.#rules.push([]);
    return this.#rules.length - 1;
  }

  /** Declares a rule with its alternatives. */
  rule(name: string, ...alternatives: readonly Term[][]): number {
    const id = this.declare(name);
    for (const alternative of alternatives) this.add(id, alternative);
    return id;
  }

  /** Adds an alternative to rule `id`. */
  add(id: number, alternative: readonly Term[]): void {
    const rule = this.#rules[id];
    if (rule === undefined) throw new RangeError(`No rule ${id}`);
    rule.push([...alternative]);
  }

  /** The rule matching exactly the UTF-8 bytes of `text` (one rule per distinct text). */
  literal(text: string): number {
    let id = this.#literals.get(text);
    if (id === undefined) {
      id = this.rule(JSON.stringify(text), bytesOf(text));
      this.#literals.set(text, id);
    }
    return id;
  }

  /** x*: any number of `x`. */
  star(name: string, x: Term): number {
    const id = this.declare(name);
    this.add(id, [x, id]);
    this.add(id, []);
    return id;
  }

  /** `x` at least `min` and at most `max` (Infinity: no bound) times. */
  repeat(name: string, x: Term, min: number, max: number): number {
    let tail: number;
    if (max === Infinity) {
      tail = this.star(`${name}*`, x);
    } else {
      tail = this.rule(`${name}{0}`, []);
      for (let k = 1; k <= max - min; k++) tail = this.rule(`${name}{0,${k}}`, [], [x, tail]);
    }
    return this.rule(name, [...new Array<Term>(min).fill(x), tail]);
  }

  /**
   * Adds the rules of a compiled grammar (renumbered after those declared so far); returns the
   * id its start rule has here.
   */
  include(grammar: Grammar): number {
    const base = this.#rules.length;
    grammar.alternatives.forEach((starts, rule) => {
      const id = this.declare(grammar.names[rule]!);
      for (const at of starts) {
        const terms: Term[] = [];
        for (let p = at; grammar.ops[p] !== END; p++) {
          const op = grammar.ops[p]!;
          terms.push(op >= 0 ? base + op : new ByteClass(grammar.classes[-2 - op]!));
        }
        this.add(id, terms);
      }
    });
    return base + grammar.start;
  }

  /**
   * Compiles the rules reachable from `start`.
   *
   * @throws {RangeError} when a rule matches no finite byte string
   */
  build(start: number): Grammar {
    const ops: number[] = [];
    const classes: Uint8Array[] = [];
    const classIds = new Map<string, number>();
    const alternatives: Int32Array[] = [];
    for (const rule of this.#rules) {
      const starts: number[] = [];
      for (const alternative of rule) {
        starts.push(ops.length);
        for (const term of alternative) {
          if (typeof term === "number") {
            ops.push(term);
            continue;
          }
          const key = term.key;
          let id = classIds.get(key);
          if (id === undefined) {
            id = classes.length;
            classes.push(term.accepts);
            classIds.set(key, id);
          }
          ops.push(-2 - id);
        }
        ops.push(END);
      }
      alternatives.push(Int32Array.from(starts));
    }
    const grammar = {
      ops: Int32Array.from(ops),
      classes,
      alternatives,
      names: [...this.#names],
      rest: new Float64Array(ops.length),
      start,
    };
    computeRest(grammar);
    const shortest = minLength(grammar, start);
    if (shortest === Infinity) {
      throw new RangeError(`Rule '${this.#names[start]}' matches no finite document`);
    }
    return grammar;
  }
}

/** The grammar of exactly one of `texts`. */
export function choiceGrammar(texts: readonly string[]): Grammar {
  const b = new GrammarBuilder();
  return b.build(b.rule("choice", ...texts.map((t) => [b.literal(t)])));
}

/** The UTF-8 bytes of `text`, one single-byte class each. */
export function bytesOf(text: string): ByteClass[] {
  return [...new TextEncoder().encode(text)].map((b) => ByteClass.of(b));
}

/** Fewest bytes a match of rule `rule` takes. */
export function minLength(grammar: Grammar, rule: number): number {
  let best = Infinity;
  for (const at of grammar.alternatives[rule]!) best = Math.min(best, grammar.rest[at]!);
  return best;
}

/** Fills `rest` by iterating to the fixed point (rules may recurse). */
function computeRest(grammar: Grammar): void {
  const { ops, rest, alternatives } = grammar;
  rest.fill(Infinity);
  const ruleMin = new Float64Array(alternatives.length).fill(Infinity);
  for (let changed = true; changed;) {
    changed = false;
    for (let p = ops.length - 1; p >= 0; p--) {
      const op = ops[p]!;
      const next = op === END ? 0 : (op >= 0 ? ruleMin[op]! : 1) + rest[p + 1]!;
      if (next < rest[p]!) {
        rest[p] = next;
        changed = true;
      }
    }
    for (let r = 0; r < alternatives.length; r++) {
      for (const at of alternatives[r]!) {
        if (rest[at]! < ruleMin[r]!) {
          ruleMin[r] = rest[at]!;
          changed = true;
        }
      }
    }
  }
}
