import assert from "node:assert/strict";
import { loadTokenizer } from "../../tokenizer/load_tokenizer.ts";
import { Automaton } from "./automaton.ts";
import { TriggeredConstraint, VocabGrammar } from "./constraint.ts";
import { toolCallGrammar } from "./tool_grammar.ts";
import { vocabTrie } from "./vocab_trie.ts";

const FIXTURES = new URL("../../../../shared/fixtures/", import.meta.url).pathname;

const TOOLS = [
  {
    name: "add",
    parameters: {
      type: "object",
      properties: { a: { type: "integer" }, b: { type: "integer" } },
      required: ["a", "b"],
      additionalProperties: false,
    },
  },
  { name: "now", parameters: { type: "object", properties: {}, additionalProperties: false } },
];

Deno.test("toolCallGrammar writes each family's calls and nothing else", () => {
  const hermes = new Automaton(toolCallGrammar("hermes", TOOLS, { parallel: true }));
  assert.ok(
    hermes.matches('<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'),
  );
  assert.ok(
    hermes.matches(
      '<tool_call>\n{"name":"now","arguments":{}}\n</tool_call>\n<tool_call>\n{"name":"now","arguments":{}}\n</tool_call>',
    ),
  );
  assert.ok(!hermes.matches('<tool_call>\n{"name": "sub", "arguments": {}}\n</tool_call>'));
  assert.ok(!hermes.matches('<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>'));
  const single = new Automaton(toolCallGrammar("hermes", TOOLS, { parallel: false }));
  assert.ok(
    !single.matches(
      '<tool_call>\n{"name":"now","arguments":{}}\n</tool_call>\n<tool_call>\n{"name":"now","arguments":{}}\n</tool_call>',
    ),
  );
  const smol = new Automaton(toolCallGrammar("smollm2", TOOLS, { parallel: true }));
  assert.ok(
    smol.matches(
      '<tool_call>[{"name": "add", "arguments": {"a": 1, "b": 2}}, {"name": "now", "arguments": {}}]</tool_call>',
    ),
  );
  const granite = new Automaton(toolCallGrammar("granite", TOOLS, { parallel: true }));
  assert.ok(
    granite.matches(
      '<|tool_call|>[{"name": "add", "arguments": {"a": 1, "b": 2}}, {"name": "now", "arguments": {}}]',
    ),
  );
  assert.ok(!granite.matches('<|tool_call|>[{"name": "add", "arguments": {"a": 1}}]'));
  assert.ok(!granite.matches('<tool_call>[{"name": "now", "arguments": {}}]</tool_call>'));
  const llama = new Automaton(toolCallGrammar("llama3", TOOLS, { parallel: true }));
  assert.ok(llama.matches('{"name": "add", "parameters": {"a": 1, "b": 2}}'));
  assert.ok(!llama.matches('{"name": "add", "arguments": {"a": 1, "b": 2}}'));
});

/** SmolLM2's tokenizer, one Hermes call of `TOOLS` over its vocabulary, and its token bytes. */
async function hermesCalls() {
  const tokenizer = await loadTokenizer(`${FIXTURES}tokenizers/smollm2/tokenizer.json`);
  const grammar = new VocabGrammar(
    toolCallGrammar("hermes", TOOLS, { parallel: false }),
    vocabTrie(tokenizer),
    tokenizer.eos,
  );
  return { tokenizer, grammar, bytes: (id: number) => tokenizer.tokenBytes(id) };
}

Deno.test("TriggeredConstraint lets text through until a call opens, then holds the call to the grammar", async () => {
  const { tokenizer, grammar, bytes } = await hermesCalls();
  const constraint = new TriggeredConstraint(grammar, bytes, "<tool_call>");
  for (const id of tokenizer.encode("Let me add them. ")) {
    assert.equal(constraint.mask(100), null);
    constraint.accept(id);
  }
  assert.ok(!constraint.active);
  for (const id of tokenizer.encode('<tool_call>\n{"name": "a')) constraint.accept(id);
  assert.ok(constraint.active);
  const mask = constraint.mask(100)!;
  const allowed = [...mask.keys()].filter((id) => mask[id] === 1).map((id) =>
    tokenizer.decode([id])
  );
  assert.ok(
    allowed.length > 0 && allowed.every((t) => 'dd", "arguments": {'.startsWith(t)),
    allowed.join("|"),
  );
  for (const id of tokenizer.encode('dd", "arguments": {"a": 1, "b": 2}}\n</tool_call>')) {
    constraint.accept(id);
  }
  assert.ok(constraint.complete);

  // A token that opens a call and breaks it at once (sampled before any mask could apply).
  const pieces = [new TextEncoder().encode("Hi <tool_call>[")];
  const off = new TriggeredConstraint(grammar, (id) => pieces[id]!, "<tool_call>");
  off.accept(0);
  assert.ok(!off.active && off.mask(10) === null, "a broken call start leaves the text free");
  const llama = new TriggeredConstraint(grammar, bytes, "{", true);
  for (const id of tokenizer.encode("Sure {")) llama.accept(id);
  assert.ok(!llama.active, "only a call at the start counts");
});

Deno.test("TriggeredConstraint skips a thinking model's reasoning: a call written in it opens nothing", async () => {
  const { tokenizer, grammar, bytes } = await hermesCalls();
  const markers = { open: "<think>", close: "</think>" };
  for (const opened of [true, false]) {
    const constraint = new TriggeredConstraint(grammar, bytes, "<tool_call>", false, {
      markers,
      opened,
    });
    const thought = `${opened ? "" : "<think>"}I could write <tool_call> here.</think>\n\n`;
    for (const id of tokenizer.encode(thought)) constraint.accept(id);
    assert.ok(!constraint.active, `opened ${opened}: a call in the reasoning`);
    for (const id of tokenizer.encode('<tool_call>\n{"name": "a')) constraint.accept(id);
    assert.ok(constraint.active, `opened ${opened}: a call after it`);
  }
});

Deno.test("toolCallGrammar loosens a part of a schema it cannot enforce to any value of its type, and enforces the rest", () => {
  // Shapes Claude Code's tools use: allOf of patterns, a string bound above 4096, a tuple.
  const send = {
    name: "send",
    parameters: {
      type: "object",
      properties: {
        to: { type: "string", allOf: [{ pattern: "^[^\\n]*$" }, { pattern: "^.{0,300}$" }] },
        script: { type: "string", maxLength: 100_000 },
        pair: { type: "array", items: [{ type: "integer" }, { type: "string" }] },
        anything: { not: { type: "null" } },
        level: { enum: ["low", "high"] },
      },
      required: ["to", "level"],
      additionalProperties: false,
    },
  };
  const grammar = new Automaton(toolCallGrammar("hermes", [send], { parallel: false }));
  const call = (args: object) =>
    `<tool_call>\n${JSON.stringify({ name: "send", arguments: args })}\n</tool_call>`;
  assert.ok(grammar.matches(call({ to: "main", level: "low" })));
  assert.ok(grammar.matches(call({ to: "a\nb", script: "x".repeat(5000), level: "high" })));
  assert.ok(
    grammar.matches(call({ to: "", pair: [1, "two", null], anything: { k: [1] }, level: "low" })),
  );
  // What it can enforce, it does: types of the loosened parts, enums, required, no extras.
  assert.ok(!grammar.matches(call({ to: 5, level: "low" })));
  assert.ok(!grammar.matches(call({ to: "main", pair: {}, level: "low" })));
  assert.ok(!grammar.matches(call({ to: "main", level: "medium" })));
  assert.ok(!grammar.matches(call({ level: "low" })));
  assert.ok(!grammar.matches(call({ to: "main", level: "low", extra: 1 })));
});
