import assert from "node:assert/strict";
import { parseAnthropicRequest } from "./anthropic_request.ts";
import { ApiError } from "./errors.ts";

function parse(body: Record<string, unknown>) {
  return parseAnthropicRequest({ max_tokens: 8, ...body });
}

/** The 400 a body gets, checked to name `param`. */
function refusal(body: Record<string, unknown>, param: string): string {
  try {
    parse(body);
  } catch (error) {
    assert.ok(error instanceof ApiError, String(error));
    assert.equal(error.status, 400);
    assert.equal(error.param, param, error.message);
    return error.message;
  }
  assert.fail(`accepted ${JSON.stringify(body)}`);
}

Deno.test("content blocks become the chat messages a template reads", () => {
  const request = parse({
    system: [{ type: "text", text: "Be brief." }, { type: "text", text: " Be kind." }],
    messages: [
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: [
          { type: "thinking", thinking: "Call the tool.", signature: "sig" },
          { type: "text", text: "Let me check." },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "toolu_2", name: "get_time", input: {} },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_1", content: "18 C" },
          {
            type: "tool_result",
            tool_use_id: "toolu_2",
            content: [{ type: "text", text: "noon" }],
            is_error: false,
          },
          { type: "text", text: "Thanks, and tomorrow?", cache_control: { type: "ephemeral" } },
        ],
      },
    ],
  });
  assert.deepEqual(request.messages, [
    { role: "system", content: "Be brief. Be kind." },
    { role: "user", content: "Weather in Paris?" },
    {
      role: "assistant",
      content: "Let me check.",
      reasoning_content: "Call the tool.",
      tool_calls: [
        {
          id: "toolu_1",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Paris"}' },
        },
        { id: "toolu_2", type: "function", function: { name: "get_time", arguments: "{}" } },
      ],
    },
    { role: "tool", tool_call_id: "toolu_1", content: "18 C" },
    { role: "tool", tool_call_id: "toolu_2", content: "noon" },
    { role: "user", content: "Thanks, and tomorrow?" },
  ]);
  assert.equal(request.continueFinal, false);
  assert.equal(request.maxTokens, 8);
});

Deno.test("a final assistant message with text is continued; tool results alone make no user turn", () => {
  const prefill = parse({
    messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello," }],
  });
  assert.equal(prefill.continueFinal, true);
  const results = parse({
    messages: [
      { role: "user", content: "Hi" },
      { role: "assistant", content: [{ type: "tool_use", id: "t", name: "f", input: {} }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "t" }] },
    ],
  });
  assert.deepEqual(results.messages.slice(1), [
    {
      role: "assistant",
      content: null,
      tool_calls: [{ id: "t", type: "function", function: { name: "f", arguments: "{}" } }],
    },
    { role: "tool", tool_call_id: "t", content: "" },
  ]);
  assert.equal(results.continueFinal, false);
});

Deno.test("tools, tool_choice, thinking and output_config map to the chat API's options", () => {
  const tool = { name: "f", input_schema: { type: "object", properties: {} } };
  const messages = [{ role: "user", content: "Hi" }];
  const any = parse({
    messages,
    tools: [tool],
    tool_choice: { type: "any", disable_parallel_tool_use: true },
  });
  assert.deepEqual(any.tools, [{ name: "f", parameters: tool.input_schema }]);
  assert.equal(any.toolChoice, "required");
  assert.equal(any.parallelToolCalls, false);
  assert.deepEqual(
    parse({ messages, tools: [tool], tool_choice: { type: "tool", name: "f" } }).toolChoice,
    { name: "f" },
  );
  assert.equal(parse({ messages, tools: [tool] }).toolChoice, "auto");
  const thinking = parse({ messages, thinking: { type: "enabled", budget_tokens: 64 } });
  assert.deepEqual(thinking.templateVariables, { enable_thinking: true });
  assert.equal(thinking.reasoningBudget, 64);
  const off = parse({ messages, thinking: { type: "disabled" } });
  assert.deepEqual(off.templateVariables, { enable_thinking: false });
  assert.equal(off.reasoningBudget, undefined);
  const schema = { type: "object" };
  assert.deepEqual(
    parse({
      messages,
      output_config: { effort: "low", format: { type: "json_schema", schema } },
    }).responseFormat,
    { type: "json_schema", name: "output", schema, strict: true },
  );
});

Deno.test("what cannot be honoured is a 400 naming where it is", () => {
  const messages = [{ role: "user", content: "Hi" }];
  refusal({ messages: [] }, "messages");
  refusal({ messages, max_tokens: undefined }, "max_tokens");
  refusal({ messages, max_tokens: -1 }, "max_tokens");
  refusal({ messages: [{ role: "tool", content: "x" }] }, "messages[0].role");
  const image = { type: "image", source: { type: "base64", media_type: "image/png", data: "" } };
  assert.match(
    refusal({ messages: [{ role: "user", content: [image] }] }, "messages[0].content[0].type"),
    /"image" is not supported/,
  );
  refusal(
    { messages: [{ role: "assistant", content: [{ type: "redacted_thinking", data: "x" }] }] },
    "messages[0].content[0].type",
  );
  refusal(
    { messages: [{ role: "user", content: [{ type: "text" }] }] },
    "messages[0].content[0].text",
  );
  refusal(
    { messages: [messages[0], { role: "assistant", content: [] }] },
    "messages[1].content",
  );
  refusal({ messages, tools: [{ name: "f" }] }, "tools[0].input_schema");
  refusal({ messages, tools: [{ type: "bash_20250124", name: "bash" }] }, "tools[0].type");
  refusal({ messages, tool_choice: { type: "any" } }, "tool_choice");
  refusal(
    {
      messages,
      tools: [{ name: "f", input_schema: {} }],
      tool_choice: { type: "tool", name: "g" },
    },
    "tool_choice.name",
  );
  refusal({ messages, thinking: { type: "enabled" } }, "thinking.budget_tokens");
  refusal({ messages, thinking: { type: "between_tools" } }, "thinking.type");
  refusal(
    { messages, context_management: { edits: [{ type: "compact_20260112" }] } },
    "context_management.edits[0].type",
  );
  refusal(
    { messages, context_management: { edits: [{ type: "clear_thinking_20251015", keep: 3 }] } },
    "context_management.edits[0].keep",
  );
  refusal(
    {
      messages,
      context_management: {
        edits: [{ type: "clear_tool_uses_20250919", trigger: { type: "turns", value: 3 } }],
      },
    },
    "context_management.edits[0].trigger",
  );
  refusal({ messages, thinking: { type: "adaptive", display: "full" } }, "thinking.display");
  refusal({ messages, output_config: { format: { type: "json_object" } } }, "output_config.format");
  refusal({ messages, output_config: { task_budget: 5 } }, "output_config.task_budget");
  refusal({ messages, temperature: 2 }, "temperature");
  refusal({ messages, stop_sequences: "END" }, "stop_sequences");
  refusal({ messages, stop_sequences: Array(33).fill("x") }, "stop_sequences");
  refusal({ messages, service_tier: "priority" }, "service_tier");
  refusal({ messages, top_logprobs: 2 }, "top_logprobs");
  refusal(
    {
      messages,
      tools: [{ name: "f", input_schema: {} }],
      output_config: { format: { type: "json_schema", schema: {} } },
    },
    "output_config.format",
  );
});
