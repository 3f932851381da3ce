/**
 * Reading a `POST /v1/messages` body (Anthropic's Messages API) into an
 * {@link AnthropicRequest}: every field honoured or refused with a 400 naming it, the content
 * blocks turned into the chat messages the model's template reads.
 */
import type { ChatMessage } from "../src/engine/chat_template.ts";
import type { SamplingOptions } from "../src/engine/sampler.ts";
import type { ToolFunction } from "../src/engine/tool_calls.ts";
import { type ContextEdit, parseContextEdits } from "./context_edits.ts";
import { invalidRequest } from "./errors.ts";
import {
  ANTHROPIC_COUNT_FIELDS,
  ANTHROPIC_MESSAGES_FIELDS,
  checkFields,
  type FieldTable,
} from "./fields.ts";
import { isRecord, messageList, partsText, stringField, type ToolChoice } from "./messages.ts";
import { boolean, integer, modelName, number, type ResponseFormat, stopList } from "./validate.ts";

/** A validated `POST /v1/messages` body. */
export interface AnthropicRequest {
  readonly model: string | undefined;
  /** The system prompt first, if any, then the conversation. */
  readonly messages: ChatMessage[];
  /** The final message is an assistant's text, which the answer continues (a prefill). */
  readonly continueFinal: boolean;
  readonly maxTokens: number;
  readonly stream: boolean;
  readonly sampling: SamplingOptions;
  readonly stopSequences: string[];
  readonly tools: ToolFunction[];
  readonly toolChoice: ToolChoice;
  readonly parallelToolCalls: boolean;
  /** `output_config.format`; undefined for free text. */
  readonly responseFormat: ResponseFormat | undefined;
  /** Variables for the chat template (`enable_thinking` when `thinking` sets it). */
  readonly templateVariables: Readonly<Record<string, unknown>>;
  /** `thinking.budget_tokens`: most tokens of a thinking model's reasoning. */
  readonly reasoningBudget: number | undefined;
  /** `thinking.display` "omitted": thinking blocks come without their text. */
  readonly omitThinking: boolean;
  /** `context_management`'s edits, applied before the prompt is rendered. */
  readonly contextEdits: readonly ContextEdit[];
}

/** The body of `POST /v1/messages/count_tokens`: what the prompt is made of. */
export type CountTokensRequest = Pick<
  AnthropicRequest,
  | "model"
  | "messages"
  | "continueFinal"
  | "tools"
  | "toolChoice"
  | "templateVariables"
  | "contextEdits"
>;

/** What `thinking` asks of a thinking model. */
interface Thinking {
  readonly variables: Record<string, unknown>;
  readonly budget: number | undefined;
  readonly omit: boolean;
}

const MAX_STOP_SEQUENCES = 32;

/** Validates a messages body; unknown and unsupported fields are refused. */
export function parseAnthropicRequest(body: Record<string, unknown>): AnthropicRequest {
  const prompt = parsePrompt(body, ANTHROPIC_MESSAGES_FIELDS);
  const maxTokens = integer(body, "max_tokens", 0, Number.MAX_SAFE_INTEGER);
  if (maxTokens === undefined) {
    throw invalidRequest("Missing required field 'max_tokens'", "max_tokens", "missing_required");
  }
  const sampling: { -readonly [K in keyof SamplingOptions]: SamplingOptions[K] } = {};
  const temperature = number(body, "temperature", 0, 1);
  if (temperature !== undefined) sampling.temperature = temperature;
  const topP = number(body, "top_p", 0, 1);
  if (topP !== undefined) sampling.topP = topP;
  const topK = integer(body, "top_k", 0, 1 << 30);
  if (topK !== undefined) sampling.topK = topK;
  const stream = boolean(body, "stream") ?? false;
  const responseFormat = outputFormat(body.output_config);
  if (responseFormat !== undefined && prompt.tools.length > 0 && prompt.toolChoice !== "none") {
    throw invalidRequest(
      "'output_config.format' cannot be combined with 'tools' unless 'tool_choice' is {\"type\": \"none\"}",
      "output_config.format",
    );
  }
  return {
    ...prompt,
    maxTokens,
    stream,
    sampling,
    stopSequences: stopList(body, "stop_sequences", MAX_STOP_SEQUENCES, true),
    responseFormat,
  };
}

/** Validates a `count_tokens` body: what a prompt is made of. */
export function parseCountTokensRequest(body: Record<string, unknown>): CountTokensRequest {
  return parsePrompt(body, ANTHROPIC_COUNT_FIELDS);
}

/** Validates what a prompt is made of, against the endpoint's `fields`. */
function parsePrompt(
  body: Record<string, unknown>,
  fields: FieldTable,
):
  & CountTokensRequest
  & Pick<AnthropicRequest, "parallelToolCalls" | "reasoningBudget" | "omitThinking"> {
  checkFields(body, fields);
  const messages = parseMessages(body.messages);
  const last = messages.at(-1)!;
  const continueFinal = last.role === "assistant";
  if (continueFinal && (typeof last.content !== "string" || last.content === "")) {
    throw invalidRequest(
      "The final message may be an assistant's only with text for the answer to continue",
      `messages[${(body.messages as unknown[]).length - 1}].content`,
    );
  }
  const tools = parseAnthropicTools(body.tools);
  const { choice, parallel } = parseAnthropicToolChoice(body.tool_choice, tools);
  const thinking = parseThinking(body.thinking);
  return {
    model: modelName(body),
    messages: [...systemPrompt(body.system), ...messages],
    contextEdits: parseContextEdits(body.context_management),
    continueFinal,
    tools,
    toolChoice: choice,
    parallelToolCalls: parallel,
    templateVariables: thinking.variables,
    reasoningBudget: thinking.budget,
    omitThinking: thinking.omit,
  };
}

/** `system`: a string or text blocks, as a system message. */
function systemPrompt(value: unknown): ChatMessage[] {
  if (value === undefined || value === null) return [];
  const text = partsText(value, "system", ["text"]);
  return text === "" ? [] : [{ role: "system", content: text }];
}

const ROLES = new Set(["user", "assistant", "system"]);

/**
 * `messages` as chat messages: a user turn's `tool_result` blocks become tool messages ahead
 * of its text; an assistant turn's `tool_use` blocks become its tool calls and its `thinking`
 * its reasoning.
 */
function parseMessages(value: unknown): ChatMessage[] {
  return messageList(value, "messages").flatMap((message, i) => {
    const where = `messages[${i}]`;
    if (!isRecord(message)) {
      throw invalidRequest(`'${where}' must be an object`, where, "invalid_type");
    }
    const { role, content } = message;
    if (typeof role !== "string" || !ROLES.has(role)) {
      throw invalidRequest(
        `'${where}.role' must be one of ${[...ROLES].join(", ")}`,
        `${where}.role`,
      );
    }
    const at = `${where}.content`;
    if (typeof content === "string" || role === "system") {
      return [{ role, content: partsText(content, at, ["text"]) }];
    }
    if (!Array.isArray(content)) {
      throw invalidRequest(
        `'${at}' must be a string or an array of content blocks`,
        at,
        "invalid_type",
      );
    }
    return role === "user" ? userTurn(content, at) : [assistantTurn(content, at)];
  });
}

/** A user turn's blocks: each `tool_result` a tool message, then the text, if any. */
function userTurn(blocks: readonly unknown[], where: string): ChatMessage[] {
  const results: ChatMessage[] = [];
  let text = "";
  blocks.forEach((block, k) => {
    const at = `${where}[${k}]`;
    const type = blockType(block, at, ["text", "tool_result"]);
    const b = block as Record<string, unknown>;
    if (type === "text") {
      text += stringField(b, "text", at);
      return;
    }
    const id = stringField(b, "tool_use_id", at);
    const output = b.content === undefined || b.content === null
      ? ""
      : partsText(b.content, `${at}.content`, ["text"]);
    results.push({ role: "tool", tool_call_id: id, content: output });
  });
  return text === "" && results.length > 0
    ? results
    : [...results, { role: "user", content: text }];
}

/** An assistant turn's blocks: text, `tool_use` calls and `thinking` reasoning. */
function assistantTurn(blocks: readonly unknown[], where: string): ChatMessage {
  let text = "";
  let reasoning = "";
  const calls: object[] = [];
  blocks.forEach((block, k) => {
    const at = `${where}[${k}]`;
    const type = blockType(block, at, ["text", "tool_use", "thinking"]);
    const b = block as Record<string, unknown>;
    if (type === "text") text += stringField(b, "text", at);
    else if (type === "thinking") reasoning += stringField(b, "thinking", at);
    else {
      calls.push({
        id: stringField(b, "id", at),
        type: "function",
        function: { name: stringField(b, "name", at), arguments: JSON.stringify(b.input ?? {}) },
      });
    }
  });
  return {
    role: "assistant",
    content: calls.length > 0 && text === "" ? null : text,
    ...(reasoning === "" ? {} : { reasoning_content: reasoning }),
    ...(calls.length === 0 ? {} : { tool_calls: calls }),
  };
}

/** A content block's type, one of `allowed`, or a 400 naming the block. */
function blockType(block: unknown, where: string, allowed: readonly string[]): string {
  if (!isRecord(block)) throw invalidRequest(`'${where}' must be an object`, where, "invalid_type");
  const { type } = block;
  if (typeof type !== "string" || !allowed.includes(type)) {
    throw invalidRequest(
      `'${where}.type' ${JSON.stringify(type)} is not supported here: only ${
        allowed.join(", ")
      } blocks (text only, no images or documents)`,
      `${where}.type`,
      "unsupported_parameter",
    );
  }
  return type;
}

/** `tools`: client tools with an `input_schema`; server tools (web search, ...) are refused. */
function parseAnthropicTools(value: unknown): ToolFunction[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw invalidRequest("'tools' must be an array", "tools", "invalid_type");
  }
  const names = new Set<string>();
  return value.map((tool, i) => {
    const at = `tools[${i}]`;
    if (!isRecord(tool)) throw invalidRequest(`'${at}' must be an object`, at, "invalid_type");
    if (tool.type !== undefined && tool.type !== null && tool.type !== "custom") {
      throw invalidRequest(
        `'${at}.type' ${
          JSON.stringify(tool.type)
        } is a server tool, which this server does not run: only client tools with an input_schema`,
        `${at}.type`,
        "unsupported_parameter",
      );
    }
    const { name, description, input_schema: schema } = tool;
    if (typeof name !== "string" || !/^[A-Za-z0-9_.-]{1,128}$/.test(name)) {
      throw invalidRequest(
        `'${at}.name' must be 1 to 128 letters, digits, '_', '.' or '-'`,
        `${at}.name`,
      );
    }
    if (names.has(name)) throw invalidRequest(`'${at}.name' repeats '${name}'`, `${at}.name`);
    names.add(name);
    if (description !== undefined && typeof description !== "string") {
      throw invalidRequest(
        `'${at}.description' must be a string`,
        `${at}.description`,
        "invalid_type",
      );
    }
    if (!isRecord(schema)) {
      throw invalidRequest(
        `'${at}.input_schema' must be a JSON schema object`,
        `${at}.input_schema`,
        schema === undefined ? "missing_required" : "invalid_type",
      );
    }
    return { name, ...(description === undefined ? {} : { description }), parameters: schema };
  });
}

/** `tool_choice`: auto, any (a call is required), a named tool, or none. */
function parseAnthropicToolChoice(
  value: unknown,
  tools: readonly ToolFunction[],
): { choice: ToolChoice; parallel: boolean } {
  if (value === undefined || value === null) {
    return { choice: tools.length > 0 ? "auto" : "none", parallel: true };
  }
  if (!isRecord(value)) {
    throw invalidRequest("'tool_choice' must be an object", "tool_choice", "invalid_type");
  }
  const disable = value.disable_parallel_tool_use ?? false;
  if (typeof disable !== "boolean") {
    throw invalidRequest(
      "'tool_choice.disable_parallel_tool_use' must be a boolean",
      "tool_choice.disable_parallel_tool_use",
      "invalid_type",
    );
  }
  const parallel = !disable;
  switch (value.type) {
    case "none":
      return { choice: "none", parallel };
    case "auto":
      return { choice: tools.length > 0 ? "auto" : "none", parallel };
    case "any":
      if (tools.length === 0) {
        throw invalidRequest("'tool_choice' is \"any\" but no 'tools' were given", "tool_choice");
      }
      return { choice: "required", parallel };
    case "tool": {
      if (typeof value.name !== "string" || !tools.some((t) => t.name === value.name)) {
        throw invalidRequest(
          `'tool_choice.name' must name one of the tools, got ${JSON.stringify(value.name)}`,
          "tool_choice.name",
        );
      }
      return { choice: { name: value.name }, parallel };
    }
    default:
      throw invalidRequest(
        `'tool_choice.type' must be one of auto, any, tool, none, got ${
          JSON.stringify(value.type)
        }`,
        "tool_choice.type",
      );
  }
}

/**
 * `thinking`: "enabled" and "adaptive" let a thinking model reason ("enabled" at most
 * `budget_tokens` tokens), "disabled" asks its template not to (`enable_thinking`); nothing is
 * set when it is left out.
 */
function parseThinking(value: unknown): Thinking {
  if (value === undefined || value === null) {
    return { variables: {}, budget: undefined, omit: false };
  }
  if (!isRecord(value)) {
    throw invalidRequest("'thinking' must be an object", "thinking", "invalid_type");
  }
  const at = (field: string) => `thinking.${field}`;
  const display = value.display ?? null;
  if (display !== null && display !== "summarized" && display !== "omitted") {
    throw invalidRequest(
      `'thinking.display' must be "summarized" or "omitted", got ${JSON.stringify(display)}`,
      at("display"),
    );
  }
  const omit = display === "omitted";
  switch (value.type) {
    case "enabled": {
      const budget = value.budget_tokens;
      if (typeof budget !== "number" || !Number.isSafeInteger(budget) || budget < 0) {
        throw invalidRequest(
          "'thinking.budget_tokens' must be a whole number of tokens with \"enabled\"",
          at("budget_tokens"),
          budget === undefined ? "missing_required" : "invalid_type",
        );
      }
      return { variables: { enable_thinking: true }, budget, omit };
    }
    case "adaptive":
      return { variables: { enable_thinking: true }, budget: undefined, omit };
    case "disabled":
      return { variables: { enable_thinking: false }, budget: undefined, omit: false };
    default:
      throw invalidRequest(
        `'thinking.type' must be one of enabled, adaptive, disabled, got ${
          JSON.stringify(value.type)
        }`,
        at("type"),
      );
  }
}

const EFFORTS = new Set(["low", "medium", "high", "xhigh", "max"]);

/** `output_config`: its `format` (JSON matching a schema); `effort` has no effect. */
function outputFormat(value: unknown): ResponseFormat | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) {
    throw invalidRequest("'output_config' must be an object", "output_config", "invalid_type");
  }
  for (const [key, v] of Object.entries(value)) {
    if (v === null || v === undefined) continue;
    if (key === "effort" && typeof v === "string" && EFFORTS.has(v)) continue;
    if (key === "format") continue;
    throw invalidRequest(
      `'output_config.${key}' is not supported: only format (json_schema) and effort`,
      `output_config.${key}`,
      "unsupported_parameter",
    );
  }
  const format = value.format;
  if (format === undefined || format === null) return undefined;
  if (!isRecord(format) || format.type !== "json_schema" || !isRecord(format.schema)) {
    throw invalidRequest(
      '\'output_config.format\' must be {"type": "json_schema", "schema": {...}}',
      "output_config.format",
    );
  }
  return { type: "json_schema", name: "output", schema: format.schema, strict: true };
}
