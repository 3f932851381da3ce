import assert from "node:assert/strict";
import { Automaton } from "./automaton.ts";
import { compileRegex } from "./regex.ts";

/** Characters every pattern is tried on: ASCII of each kind, and each UTF-8 length's ends. */
const EXTRA = [
  ..."9x \n",
  "\u0080",
  "é",
  "\u07ff",
  "\u0800",
  "日",
  "\uffff",
  "\u{10000}",
  "😀",
  "\u{10ffff}",
];

/** Every text of up to `length` characters of `alphabet`. */
function allTexts(alphabet: readonly string[], length: number): string[] {
  let level = [""];
  const out = [""];
  for (let n = 1; n <= length; n++) {
    level = level.flatMap((t) => alphabet.map((c) => t + c));
    out.push(...level);
  }
  return out;
}

/**
 * Asserts that the grammar of `pattern` accepts exactly what JavaScript's RegExp matches whole,
 * over every text of up to three characters of the examples' characters and `EXTRA`, and the
 * examples.
 */
function sameAsRegExp(pattern: string, examples: readonly string[]): void {
  const m = new Automaton(compileRegex(pattern));
  const js = new RegExp(`^(?:${pattern})$`, "u");
  const alphabet = [...new Set([...examples.flatMap((e) => [...e]), ...EXTRA])];
  let matched = 0;
  for (const text of [...examples, ...allTexts(alphabet, 3)]) {
    const expected = js.test(text);
    assert.equal(m.matches(text), expected, `/${pattern}/ on ${JSON.stringify(text)}`);
    if (expected) matched++;
  }
  assert.ok(matched > 0, `/${pattern}/ matched nothing tried`);
}

Deno.test("compileRegex matches what RegExp matches whole: literals, classes, groups, quantifiers", () => {
  const cases: [string, string[]][] = [
    ["abc", ["abc", "ab", "abcd"]],
    ["a|b|", ["a", "b", "", "ab"]],
    ["(ab)*z", ["z", "abz", "ababz", "aba"]],
    ["(?:a|b)+", ["a", "abba", ""]],
    ["(?<word>\\w{2,4})-\\d?", ["ab-", "abcd-1", "a-1", "abcde-"]],
    ["[a-z0-9._]+@[a-z]+\\.[a-z]{2,3}", ["a.b@ex.com", "a@b.c", "@x.io"]],
    ["\\d{3}-\\d{4}", ["555-1234", "55-1234"]],
    ["\\d\\D?\\w?", ["1", "9a", "0-_"]],
    ["[^a-z]*", ["ABC", "aBC", "日😀"]],
    [".{1,3}", ["日😀a", "\n", "é"]],
    ["\\s\\S\\W\\D", [" a-x", "\na@@"]],
    ["[\\w\\s]{0,2}", ["a ", "é"]],
    ["[é-日]+", ["é", "ÿĀ", "日", "a"]],
    ["[^日]", ["日", "😀", "a"]],
    ["😀+x?", ["😀😀", "😀x"]],
    ["\\u00e9|\\x41|\\u{1F600}", ["é", "A", "😀"]],
    ["a{2}b{1,}c{0,2}", ["aab", "aabbbcc", "abc"]],
    ["(a|bc)??d+?", ["d", "ad", "bcdd"]],
    ["^(yes|no)$", ["yes", "no", "maybe"]],
    ["^a$|^b$", ["a", "b", "ab"]],
    ["[-a]\\.[\\]\\\\]", ["-.]", "a.\\"]],
    ["[^]", ["a", "\n", "😀", ""]],
  ];
  for (const [pattern, examples] of cases) sameAsRegExp(pattern, examples);
});

Deno.test("compileRegex encodes any range of code points as UTF-8 exactly", () => {
  const ends = [0, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xffff, 0x10000, 0x10ffff];
  let x = 7;
  const random = () => (x = (x * 1103515245 + 12345) >>> 0) % 0x110000;
  const points = (cp: number) => cp < 0xd800 || cp > 0xdfff;
  for (let k = 0; k < 60; k++) {
    const pair = k < 25
      ? [ends[k % ends.length]!, ends[(k * 7) % ends.length]!]
      : [random(), random()];
    const [lo, hi] = pair.sort((a, b) => a - b) as [number, number];
    if (!points(lo) || !points(hi)) continue;
    const hex = (cp: number) => `\\u{${cp.toString(16)}}`;
    const pattern = `[${hex(lo)}-${hex(hi)}]`;
    const m = new Automaton(compileRegex(pattern));
    const tried = [...ends, lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, random(), random()];
    for (const cp of tried.filter((c) => c >= 0 && c <= 0x10ffff && points(c))) {
      const inside = cp >= lo && cp <= hi;
      assert.equal(
        m.matches(String.fromCodePoint(cp)),
        inside,
        `${pattern} on U+${cp.toString(16)}`,
      );
    }
  }
});

Deno.test("compileRegex refuses what it cannot honour, naming the construct and its offset", () => {
  const refused: [string, RegExp][] = [
    ["(a)\\1", /backreferences \('\\1'\) are not supported at offset 3/],
    ["a(?=b)", /lookaround '\(\?=b' is not supported at offset 1/],
    ["(?<!a)b", /lookaround/],
    ["\\bword", /word boundaries/],
    ["a^b", /'\^' inside the pattern/],
    ["a$b", /'\$' inside the pattern/],
    ["(a$)", /'\$' inside the pattern/],
    ["*a", /'\*' with nothing to repeat at offset 0/],
    ["a**", /'\*' with nothing to repeat at offset 2/],
    ["(ab", /unclosed '\(' at offset 0/],
    ["ab)", /unmatched '\)' at offset 2/],
    ["[ab", /unclosed '\[' at offset 0/],
    ["[z-a]", /a range out of order at offset 1/],
    ["[\\d-z]", /a range between a class and a character/],
    ["a{3,2}", /the bounds are out of order/],
    ["\\p{L}", /the escape '\\p' is not supported/],
    ["\\xZZ", /a malformed '\\x' escape at offset 0/],
  ];
  for (const [pattern, message] of refused) {
    assert.throws(() => compileRegex(pattern, "structured_outputs.regex"), (e: unknown) => {
      assert.ok(e instanceof TypeError, `${pattern}: ${e}`);
      assert.match(e.message, /^structured_outputs\.regex: /);
      assert.match(e.message, message, pattern);
      return true;
    });
  }
  assert.throws(() => compileRegex("a{1001}"), /repeats more than 1000 times/);
  assert.throws(() => compileRegex("[]"), /matches no character/);
});
