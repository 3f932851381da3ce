/**
 * The requests coding agents send, in their shape: Claude Code's to `/v1/messages` and Codex's
 * to `/v1/responses`, with every field and kind of block or item they were seen to send (Claude
 * Code 2.1.332, Codex 0.171.0, through a logging proxy); the texts here are made up. The agents
 * themselves are native binaries too large for CI; these keep what they need from breaking.
 */
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import type OpenAI from "openai";
import { startServer } from "./_serve_harness.ts";
import { smolLM2Service } from "./_smollm2.ts";

/** Tool schemas as the agents write them: `$schema`, `allOf` of patterns, huge bounds. */
const SEND_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  properties: {
    to: { type: "string", allOf: [{ pattern: "^[^\\n\\r]*$" }, { pattern: "^[\\s\\S]{0,300}$" }] },
    message: { default: "", type: "string" },
    script: { type: "string", maxLength: 100000 },
  },
  required: ["to", "message"],
  additionalProperties: false,
};
const READ_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  type: "object",
  properties: {
    file_path: { type: "string" },
    offset: { type: "integer", minimum: 0, maximum: 9007199254740991 },
    limit: { type: "integer", exclusiveMinimum: 0, maximum: 9007199254740991 },
  },
  required: ["file_path"],
  additionalProperties: false,
};

Deno.test("Claude Code's request shape streams an answer", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const client = new Anthropic({ baseURL: server.url, apiKey: "sk-local", maxRetries: 0 });
  const body = {
    model: "smollm2-tiny",
    max_tokens: 32000,
    stream: true,
    system: [
      { type: "text", text: "You are a coding agent." },
      { type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } },
    ],
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: "<system-reminder>Today is Sunday.</system-reminder>" },
          { type: "text", text: "Say hello", cache_control: { type: "ephemeral" } },
        ],
      },
      { role: "system", content: [{ type: "text", text: "Tools may change." }] },
    ],
    tools: [
      { name: "SendMessage", description: "Send a message", input_schema: SEND_SCHEMA },
      { name: "Read", description: "Read a file", input_schema: READ_SCHEMA },
    ],
    metadata: { user_id: JSON.stringify({ device_id: "d", session_id: "s" }) },
    thinking: { type: "adaptive", display: "omitted" },
    context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
    output_config: { effort: "high" },
  };
  const message = await client.messages.stream(
    body as unknown as Anthropic.MessageStreamParams,
    { headers: { "anthropic-beta": "claude-code-20250219,context-management-2025-06-27" } },
  ).finalMessage();
  assert.ok(
    ["end_turn", "tool_use", "model_context_window_exceeded"].includes(message.stop_reason!),
    message.stop_reason!,
  );
  assert.ok(message.usage.output_tokens > 0);
});

Deno.test("Codex's request shape streams a response", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const client = server.client("sk-local");
  const body = {
    model: "smollm2-tiny",
    stream: true,
    instructions: "You are a coding agent.",
    input: [
      { type: "message", role: "developer", content: [{ type: "input_text", text: "Be safe." }] },
      { type: "message", role: "user", content: [{ type: "input_text", text: "Say hello" }] },
    ],
    tools: [
      {
        type: "function",
        name: "exec_command",
        description: "Run a command",
        strict: false,
        parameters: READ_SCHEMA,
      },
      {
        type: "namespace",
        name: "multi_agent_v1",
        description: "Agents",
        tools: [{ type: "function", name: "send", parameters: SEND_SCHEMA }],
      },
      { type: "web_search", external_web_access: false },
    ],
    tool_choice: "auto",
    parallel_tool_calls: true,
    reasoning: { summary: "auto" },
    store: false,
    include: ["reasoning.encrypted_content"],
    prompt_cache_key: "thread",
    client_metadata: { "x-codex-installation-id": "i", session_id: "s" },
    max_output_tokens: 24,
  };
  const response = await client.responses.stream(
    body as unknown as OpenAI.Responses.ResponseCreateParamsStreaming,
  ).finalResponse();
  assert.ok(["completed", "incomplete"].includes(response.status!), response.status);
  assert.ok(response.usage!.output_tokens > 0);
});
