import assert from "node:assert/strict";
import type { ChatMessage } from "../src/engine/chat_template.ts";
import {
  applyContextEdits,
  CLEARED_RESULT,
  type ContextEdit,
  parseContextEdits,
} from "./context_edits.ts";

/** Characters as tokens: enough to see what an edit frees. */
const count = (messages: readonly ChatMessage[]) => JSON.stringify(messages).length;

function turn(n: number, tool: string): ChatMessage[] {
  const id = `toolu_${n}`;
  return [
    { role: "user", content: `q${n}` },
    {
      role: "assistant",
      content: null,
      reasoning_content: `t${n}`,
      tool_calls: [{ id, type: "function", function: { name: tool, arguments: `{"n":${n}}` } }],
    },
    { role: "tool", tool_call_id: id, content: `result ${n} `.repeat(20) },
  ];
}

const CONVERSATION = [
  ...turn(1, "read"),
  ...turn(2, "bash"),
  ...turn(3, "read"),
  ...turn(4, "read"),
];

function edits(value: unknown): ContextEdit[] {
  return parseContextEdits({ edits: [value] });
}

Deno.test("clear_thinking_20251015 keeps the reasoning of the last turns asked for", () => {
  const kept = (keep?: unknown) =>
    applyContextEdits(CONVERSATION, edits({ type: "clear_thinking_20251015", keep }), count)
      .messages.flatMap((m) => (m.reasoning_content === undefined ? [] : [m.reasoning_content]));
  assert.deepEqual(kept("all"), ["t1", "t2", "t3", "t4"]);
  assert.deepEqual(kept(), ["t4"]);
  assert.deepEqual(kept({ type: "thinking_turns", value: 2 }), ["t3", "t4"]);
  const none = edits({
    type: "clear_thinking_20251015",
    keep: { type: "thinking_turns", value: 0 },
  });
  const { messages, applied } = applyContextEdits(CONVERSATION, none, count);
  assert.ok(messages.every((m) => m.reasoning_content === undefined));
  assert.deepEqual(applied, [{
    type: "clear_thinking_20251015",
    cleared_thinking_turns: 4,
    cleared_input_tokens: count(CONVERSATION) - count(messages),
  }]);
});

Deno.test("clear_tool_uses_20250919 clears the oldest results past its trigger, keeping the last ones and excluded tools", () => {
  const results = (messages: readonly ChatMessage[]) =>
    messages.filter((m) => m.role === "tool").map((m) => m.content === CLEARED_RESULT);
  // Under the trigger: nothing.
  const quiet = applyContextEdits(CONVERSATION, edits({ type: "clear_tool_uses_20250919" }), count);
  assert.equal(quiet.messages, CONVERSATION);
  assert.deepEqual(quiet.applied, []);
  // Past it: all but the last two results; bash's never.
  const edit = edits({
    type: "clear_tool_uses_20250919",
    trigger: { type: "input_tokens", value: 100 },
    keep: { type: "tool_uses", value: 1 },
    exclude_tools: ["bash"],
    clear_tool_inputs: ["read"],
  });
  const { messages, applied } = applyContextEdits(CONVERSATION, edit, count);
  assert.deepEqual(results(messages), [true, false, true, false]);
  const inputs = messages.flatMap((m) =>
    Array.isArray(m.tool_calls)
      ? (m.tool_calls as { function: { arguments: string } }[]).map((c) => c.function.arguments)
      : []
  );
  assert.deepEqual(inputs, ["{}", '{"n":2}', "{}", '{"n":4}']);
  assert.deepEqual(applied, [{
    type: "clear_tool_uses_20250919",
    cleared_tool_uses: 2,
    cleared_input_tokens: count(CONVERSATION) - count(messages),
  }]);
  // A trigger in tool uses; and nothing when it would free less than clear_at_least.
  const byUses = { type: "clear_tool_uses_20250919", trigger: { type: "tool_uses", value: 3 } };
  assert.deepEqual(results(applyContextEdits(CONVERSATION, edits(byUses), count).messages), [
    true,
    false,
    false,
    false,
  ]);
  const greedy = { ...byUses, clear_at_least: { type: "input_tokens", value: 100_000 } };
  assert.deepEqual(applyContextEdits(CONVERSATION, edits(greedy), count).applied, []);
});
