import assert from "node:assert/strict";
import { Automaton } from "./automaton.ts";
import { compileJsonSchema } from "./json_schema.ts";
import { afterReasoning } from "./reasoning_grammar.ts";

const MARKERS = { open: "<think>", close: "</think>" };
const ANSWER = compileJsonSchema({
  type: "object",
  properties: { a: { type: "integer" } },
  required: ["a"],
  additionalProperties: false,
});

function check(opened: boolean, accept: readonly string[], reject: readonly string[]): void {
  const m = new Automaton(afterReasoning(ANSWER, MARKERS, opened));
  for (const text of accept) assert.ok(m.matches(text), `should accept ${JSON.stringify(text)}`);
  for (const text of reject) assert.ok(!m.matches(text), `should reject ${JSON.stringify(text)}`);
}

Deno.test("afterReasoning: a block the prompt opened is closed before the answer", () => {
  check(
    true,
    [
      'hmm</think>\n\n{"a":1}',
      '</think>{"a":1}',
      'a </thin k> </think> {"a":-2}',
      '<</think>{"a":1}',
    ],
    ['{"a":1}', 'x</think>y</think>{"a":1}', 'x</think>{"a":1} ', "x</think>", 'x{"a":1}'],
  );
});

Deno.test("afterReasoning: otherwise a block may come first, or the answer at once", () => {
  check(
    false,
    ['{"a":1}', '<think>x</think>\n{"a":1}', '<think></think>{"a":3}'],
    [
      'x{"a":1}',
      '<think>x{"a":1}',
      ' {"a":1}',
      '</think>{"a":1}',
      '<think>a</think>b</think>{"a":1}',
    ],
  );
});

Deno.test("afterReasoning: the fewest bytes to finish count the closing marker", () => {
  const m = new Automaton(afterReasoning(ANSWER, MARKERS, true));
  const state = m.walk(m.start, new TextEncoder().encode("thinking"));
  // `</think>` and `{"a":0}`.
  assert.equal(m.distance(state), 8 + 7);
});
