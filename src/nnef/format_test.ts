import assert from "node:assert/strict";
import type { RValue } from "./ast.ts";
import { formatRValue } from "./format.ts";
import { parseDocument } from "./parse.ts";

function parseRValue(source: string): RValue {
  return parseDocument(`version 1.0; graph g() -> () { y = ${source}; }`).graph.body[0]!.right;
}

function withoutPositions(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (key, v) => key === "at" ? undefined : v));
}

Deno.test("formatRValue prints shape items as NNEF text", () => {
  assert.equal(formatRValue(parseRValue("[1, 4, P,8]")), "[1, 4, P, 8]");
  assert.equal(formatRValue(parseRValue("S+P")), "S + P");
  assert.equal(formatRValue(parseRValue("(S + P) * 2")), "(S + P) * 2");
  assert.equal(formatRValue(parseRValue("S + (P * 2)")), "S + P * 2");
  assert.equal(formatRValue(parseRValue("a - (b - c)")), "a - (b - c)");
  assert.equal(formatRValue(parseRValue("-x")), "-x");
  assert.equal(formatRValue(parseRValue("- 1")), "- 1");
  assert.equal(formatRValue(parseRValue("-(a + b)")), "-(a + b)");
});

Deno.test("formatRValue output parses back to the same tree", () => {
  const sources = [
    "variable<scalar>(label = 'a.b\\'c', shape = [64, 64])",
    'i"x.y" + i"1"[0]',
    "a if b > 0 else (c if d else e)",
    "(a if b else c) + 1",
    "[for i in range_of(x), j in [1, 2] yield x[i:j] * -1]",
    "a[:n] ^ 2 ^ 3",
    "a ^ (2 ^ 3)",
    "!(a && b) || c in d",
    "(1, 'two', true, -inf, 1e-06, 2.)",
    "-a[0] - - 1 - -1",
    "f(g(x), k = [S, S + P - 1])",
  ];
  for (const source of sources) {
    const tree = parseRValue(source);
    const text = formatRValue(tree);
    assert.deepEqual(withoutPositions(parseRValue(text)), withoutPositions(tree), text);
  }
});
