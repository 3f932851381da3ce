import assert from "node:assert/strict";
import { Automaton } from "./automaton.ts";
import { compileGbnf } from "./gbnf.ts";

/** Asserts which of `texts` the grammar accepts whole: `yes` do, `no` do not. */
function accepts(gbnf: string, yes: readonly string[], no: readonly string[]): void {
  const m = new Automaton(compileGbnf(gbnf));
  for (const text of yes) assert.ok(m.matches(text), `${JSON.stringify(text)} should match`);
  for (const text of no) assert.ok(!m.matches(text), `${JSON.stringify(text)} should not match`);
}

Deno.test("compileGbnf: literals, rules, alternatives, groups and quantifiers", () => {
  accepts(
    `root ::= answer "."   # the answer, then a full stop
answer ::= "yes" | "no" | num ("," num)*
num ::= [0-9]+`,
    ["yes.", "no.", "1.", "12,3,456."],
    ["yes", "maybe.", ",1.", "1,.", "1,2,"],
  );
  accepts(`root ::= "a"? "b"{2} "c"{1,} "d"{0,2}`, ["bbc", "abbcccdd"], ["bc", "abbcddd", "abb"]);
  accepts(`root ::= ("ab" | "c")* "!"`, ["!", "ab!", "cabc!"], ["a!", "abab"]);
});

Deno.test("compileGbnf: classes, negation, any character and escapes, over UTF-8", () => {
  accepts(`root ::= [a-cx] [^a-z\\n] .`, ["aZ日", "x😀é", "c1\n"], ["dZx", "aaa", "a\nx"]);
  accepts(
    `root ::= "\\"q\\" \\t\\\\" [\\x41-\\x43] "\\u00e9\\U0001F600" [\\]\\-]`,
    ['"q" \t\\Bé😀]', '"q" \t\\Aé😀-'],
    ['"q" \t\\Dé😀]'],
  );
});

Deno.test("compileGbnf: a rule may span lines inside parentheses and after '::=' or '|'", () => {
  accepts(
    `root ::=
  "{" ws (
    pair
    ("," ws pair)*
  )? "}"
pair ::= [a-z]+ ":" ws [0-9]+ |
  "-"
ws ::= [ \\t\\n]*`,
    ["{}", "{a:1}", "{ab: 12, -}", "{a:1,\n c:2}"],
    ["{a}", "{a:1,}"],
  );
});

Deno.test("compileGbnf: what cannot be compiled is refused, naming the line and column", () => {
  const cases: [string, RegExp][] = [
    [`answer ::= "x"`, /grammar: no 'root' rule at 1:1/],
    [`root ::= value`, /grammar: rule 'value' is not defined at 1:10/],
    [`root ::= "a"\nroot ::= "b"`, /rule 'root' is defined twice at 2:1/],
    [`root ::= "a`, /unterminated string at 1:10/],
    [`root ::= [a-`, /unclosed '\[' at 1:10/],
    [`root ::= ("a"`, /unclosed '\(' at 1:10/],
    [`root ::= [z-a]`, /a range that runs backwards at 1:10/],
    [`root ::= "a" )`, /unexpected '\)' at 1:14/],
    [`root = "a"`, /expected '::=' at 1:6/],
    [`root ::= "\\q"`, /a malformed escape '\\q' at 1:11/],
    [`root ::= "a"{3,1}`, /'\{3,1\}' has max below min at 1:13/],
    [`root ::= expr\nexpr ::= expr "+" "1" | "1"`, /'expr' refers to itself before reading/],
    [`root ::= x\nx ::= "y"? root`, /refers to itself before reading a character/],
  ];
  for (const [gbnf, message] of cases) {
    assert.throws(() => compileGbnf(gbnf), message, gbnf);
  }
  assert.throws(() => compileGbnf(`root ::= "a"{1001}`), RangeError);
  assert.throws(() => compileGbnf(`root ::= root "a"`), /left recursion/);
  // Recursion after a character is fine: balanced parentheses.
  accepts(`root ::= "(" root ")" | ""`, ["", "()", "(())"], ["(", "())"]);
  // A rule with no finite match.
  assert.throws(() => compileGbnf(`root ::= "a" root`), /matches no finite document/);
});

Deno.test("compileGbnf reads llama.cpp's JSON grammar", () => {
  const json = String.raw`root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}`;
  accepts(
    json,
    ['{"a": [1, 2.5, "x\\n"], "b": {"c": null}}', "{}", '{"k": true}'],
    ['{"a": }', "[1]", '{"a": 01}', '{"a": "\u0001"}'],
  );
});
