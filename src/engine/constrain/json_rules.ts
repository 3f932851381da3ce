import { ByteClass, bytesOf, type GrammarBuilder, type Term } from "./grammar.ts";

/**
 * The lexical rules of JSON text in one grammar: characters and strings, natural numbers and
 * integers within a range (no leading zeros), and the string formats with a grammar of their
 * own. Each rule is made once and shared by every place that uses it.
 */
export class JsonRules {
  /** The grammar the rules go into. */
  readonly builder: GrammarBuilder;
  readonly #shared = new Map<string, number>();

  /** Rules over `builder`, none made yet. */
  constructor(builder: GrammarBuilder) {
    this.builder = builder;
  }

  /** The rule kept under `key`, if it was made. */
  get(key: string): number | undefined {
    return this.#shared.get(key);
  }

  /** Keeps `rule` under `key` (a rule declared before its alternatives, so that it may recur). */
  keep(key: string, rule: number): void {
    this.#shared.set(key, rule);
  }

  /** Integers in lo..hi (both within 15 digits). */
  integerRange(lo: number, hi: number): number {
    const b = this.builder;
    const key = `int ${lo}..${hi}`;
    return this.shared(key, () => {
      const alternatives: Term[][] = [];
      if (hi >= 0) alternatives.push([this.natural(Math.max(lo, 0), hi)]);
      if (lo < 0) {
        const upper = -lo;
        const lower = hi < 0 ? -hi : 1;
        alternatives.push([b.literal("-"), this.natural(lower, upper)]);
      }
      return b.rule(key, ...alternatives);
    });
  }

  /** Natural numbers in lo..hi without leading zeros. */
  natural(lo: number, hi: number): number {
    const b = this.builder;
    return this.shared(`nat ${lo}..${hi}`, () => {
      const alternatives: Term[][] = [];
      if (lo === 0) alternatives.push(bytesOf("0"));
      const from = Math.max(lo, 1);
      for (let digits = String(from).length; digits <= String(hi).length; digits++) {
        const a = Math.max(from, 10 ** (digits - 1));
        const z = Math.min(hi, 10 ** digits - 1);
        if (a <= z) alternatives.push(...sameLength(String(a), String(z)));
      }
      return b.rule(`nat ${lo}..${hi}`, ...alternatives);
    });
  }

  /** A JSON string in one of `STRING_FORMATS` (`json_schema.ts`). */
  format(format: string): number {
    const b = this.builder;
    return this.shared(`format ${format}`, () => {
      const d = digit();
      const quote = b.literal('"');
      const range2 = (lo: number, hi: number) =>
        b.rule(`${lo}..${hi}`, ...sameLength(pad2(lo), pad2(hi)));
      const date = () =>
        this.shared("date", () => {
          const long = b.rule(
            "31-day month",
            ...["01", "03", "05", "07", "08", "10", "12"].map((m) => bytesOf(m)),
          );
          const short = b.rule("30-day month", ...["04", "06", "09", "11"].map((m) => bytesOf(m)));
          const dash = b.literal("-");
          return b.rule(
            "date",
            [d, d, d, d, dash, long, dash, range2(1, 31)],
            [d, d, d, d, dash, short, dash, range2(1, 30)],
            [d, d, d, d, dash, b.literal("02"), dash, range2(1, 28)],
          );
        });
      const time = () =>
        this.shared("time", () => {
          const colon = b.literal(":");
          const fraction = b.rule("time fraction", [], [b.literal("."), b.repeat("ms", d, 1, 6)]);
          return b.rule("time", [
            range2(0, 23),
            colon,
            range2(0, 59),
            colon,
            range2(0, 59),
            fraction,
            b.literal("Z"),
          ]);
        });
      switch (format) {
        case "date":
          return b.rule("date string", [quote, date(), quote]);
        case "time":
          return b.rule("time string", [quote, time(), quote]);
        case "date-time":
          return b.rule("date-time string", [quote, date(), b.literal("T"), time(), quote]);
        case "uuid": {
          const hex = ByteClass.ranges([48, 57], [97, 102]);
          const group = (n: number) => new Array<Term>(n).fill(hex);
          const dash = b.literal("-");
          return b.rule("uuid string", [
            quote,
            ...group(8),
            dash,
            ...group(4),
            dash,
            ...group(4),
            dash,
            ...group(4),
            dash,
            ...group(12),
            quote,
          ]);
        }
        default: {
          const alnum = ByteClass.ranges([48, 57], [97, 122]);
          const label = b.repeat("label", alnum, 1, 20);
          const dot = b.literal(".");
          const labels = b.star("labels", b.rule(".label", [dot, label]));
          const tld = b.repeat("tld", ByteClass.ranges([97, 122]), 2, 6);
          return b.rule("email string", [
            quote,
            b.repeat("local", alnum, 1, 32),
            b.literal("@"),
            label,
            labels,
            dot,
            tld,
            quote,
          ]);
        }
      }
    });
  }

  /** One character of a JSON string: unescaped UTF-8 or an escape. */
  char(): number {
    return this.shared("char", (b) => {
      const cont = ByteClass.ranges([0x80, 0xbf]);
      const hex = ByteClass.ranges([48, 57], [65, 70], [97, 102]);
      return b.rule(
        "char",
        [ByteClass.ranges([0x20, 0x7f]).minus(ByteClass.chars('"\\'))],
        [ByteClass.ranges([0xc2, 0xdf]), cont],
        [ByteClass.of(0xe0), ByteClass.ranges([0xa0, 0xbf]), cont],
        [ByteClass.ranges([0xe1, 0xec], [0xee, 0xef]), cont, cont],
        [ByteClass.of(0xed), ByteClass.ranges([0x80, 0x9f]), cont],
        [ByteClass.of(0xf0), ByteClass.ranges([0x90, 0xbf]), cont, cont],
        [ByteClass.ranges([0xf1, 0xf3]), cont, cont, cont],
        [ByteClass.of(0xf4), ByteClass.ranges([0x80, 0x8f]), cont, cont],
        [ByteClass.chars("\\"), ByteClass.chars('"\\/bfnrt')],
        // `\u` escapes of surrogates are left out: a lone one is not text.
        [
          ByteClass.chars("\\"),
          ByteClass.chars("u"),
          hex.minus(ByteClass.chars("dD")),
          hex,
          hex,
          hex,
        ],
        [
          ByteClass.chars("\\"),
          ByteClass.chars("u"),
          ByteClass.chars("dD"),
          ByteClass.ranges([48, 55]),
          hex,
          hex,
        ],
      );
    });
  }

  /** Any JSON string. */
  string(): number {
    return this.shared("string", (b) => {
      const quote = b.literal('"');
      return b.rule("string", [quote, b.star("chars", this.char()), quote]);
    });
  }

  /** The rule kept under `key`, made by `make` the first time it is asked for. */
  shared(key: string, make: (b: GrammarBuilder) => number): number {
    let rule = this.#shared.get(key);
    if (rule === undefined) {
      rule = make(this.builder);
      this.#shared.set(key, rule);
    }
    return rule;
  }
}

/** A decimal digit. */
export function digit(): ByteClass {
  return ByteClass.ranges([48, 57]);
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** The digit strings from `a` to `z` (same length, a <= z), as alternatives of byte classes. */
function sameLength(a: string, z: string): Term[][] {
  if (a.length === 0) return [[]];
  const first = a.charCodeAt(0);
  const last = z.charCodeAt(0);
  const restA = a.slice(1);
  const restZ = z.slice(1);
  if (first === last) return sameLength(restA, restZ).map((t) => [ByteClass.of(first), ...t]);
  const out: Term[][] = [];
  // Whole decades collapse into one class each side: x000..y999 is [x-y] then any digits.
  const lowWhole = /^0*$/.test(restA);
  const highWhole = /^9*$/.test(restZ);
  if (!lowWhole) {
    for (const t of sameLength(restA, "9".repeat(restA.length))) {
      out.push([ByteClass.of(first), ...t]);
    }
  }
  const lo = lowWhole ? first : first + 1;
  const hi = highWhole ? last : last - 1;
  if (lo <= hi) {
    out.push([ByteClass.ranges([lo, hi]), ...new Array<Term>(restA.length).fill(digit())]);
  }
  if (!highWhole) {
    for (const t of sameLength("0".repeat(restZ.length), restZ)) {
      out.push([ByteClass.of(last), ...t]);
    }
  }
  return out;
}
