/**
 * The chat messages and tools of a request, validated: roles, contents, assistant tool calls
 * and tool results, function tools and the tool choice, and their rendering through the
 * model's chat template.
 */
import type { ChatMessage } from "../src/engine/chat_template.ts";
import type { ChatRenderOptions, InferenceService } from "../src/engine/service.ts";
import type { ToolFunction } from "../src/engine/tool_calls.ts";
import { invalidRequest } from "./errors.ts";

/** `tool_choice`: whether the model may, must, or must not call a tool, or which one. */
export type ToolChoice = "none" | "auto" | "required" | { readonly name: string };

/** OpenAI's reasoning efforts (`reasoning_effort`, `reasoning.effort`). */
export const REASONING_EFFORTS: ReadonlySet<string> = new Set([
  "none",
  "minimal",
  "low",
  "medium",
  "high",
  "xhigh",
  "max",
]);

/**
 * What a reasoning effort asks of a thinking model's template: none or minimal turn its
 * thinking off (`enable_thinking` false), any other on. There is no budget per effort.
 */
export function effortVariables(effort: string): Record<string, unknown> {
  return { enable_thinking: effort !== "none" && effort !== "minimal" };
}

/** True for a plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const ROLES = new Set(["system", "developer", "user", "assistant", "tool", "function"]);

/** Validates one chat message, `messages[index]`. */
export function parseMessage(value: unknown, index: number): ChatMessage {
  const where = `messages[${index}]`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidRequest(`'${where}' must be an object`, where, "invalid_type");
  }
  const message = value as Record<string, unknown>;
  const { role, content } = message;
  if (typeof role !== "string") {
    throw invalidRequest(`'${where}.role' must be a string`, `${where}.role`, "invalid_type");
  }
  if (!ROLES.has(role)) {
    throw invalidRequest(
      `'${where}.role' must be one of ${[...ROLES].join(", ")}, got '${role}'`,
      `${where}.role`,
    );
  }
  const extra = { ...toolFields(message, where), ...reasoningField(message, where) };
  if (typeof content === "string") return { role, content, ...extra };
  if ((content === null || content === undefined) && role === "assistant") {
    return { role, content: extra.tool_calls ? null : "", ...extra };
  }
  return { role, content: partsText(content, `${where}.content`, ["text"]), ...extra };
}

/**
 * An assistant turn's reasoning, as the templates of thinking models read it
 * (`reasoning_content`); given as `reasoning_content` or `reasoning`.
 */
function reasoningField(message: Record<string, unknown>, where: string): Record<string, unknown> {
  const reasoning = optionalString(message, "reasoning_content", where) ??
    optionalString(message, "reasoning", where);
  return reasoning === undefined ? {} : { reasoning_content: reasoning };
}

/**
 * The messages of a body's `field`: an array of at least one; a 400 naming the field otherwise.
 */
export function messageList(value: unknown, field: string): unknown[] {
  if (value === undefined || value === null) {
    throw invalidRequest(`Missing required field '${field}'`, field, "missing_required");
  }
  if (!Array.isArray(value)) {
    throw invalidRequest(`'${field}' must be an array`, field, "invalid_type");
  }
  if (value.length === 0) {
    throw invalidRequest(`'${field}' must not be empty`, field, "empty_array");
  }
  return value;
}

/**
 * The text of `value`: a string, or an array of text parts (`{"type": <one of kinds>, "text"}`)
 * joined; a 400 naming `where`, or the part, otherwise.
 */
export function partsText(value: unknown, where: string, kinds: readonly string[]): string {
  if (typeof value === "string") return value;
  if (!Array.isArray(value)) {
    throw invalidRequest(
      `'${where}' must be a string or an array of text parts`,
      where,
      "invalid_type",
    );
  }
  return value.map((part, k) => {
    if (
      !isRecord(part) || typeof part.type !== "string" || !kinds.includes(part.type) ||
      typeof part.text !== "string"
    ) {
      throw invalidRequest(
        `'${where}[${k}]' must be a text part {"type": "${kinds[0]}", "text": ...}`,
        `${where}[${k}]`,
        "invalid_type",
      );
    }
    return part.text;
  }).join("");
}

/** `item[field]` when it is a string; a 400 naming `where.field` otherwise. */
export function stringField(item: Record<string, unknown>, field: string, where: string): string {
  const value = item[field];
  if (typeof value !== "string") {
    throw invalidRequest(
      `'${where}.${field}' must be a string`,
      `${where}.${field}`,
      "invalid_type",
    );
  }
  return value;
}

/** `message[key]` when it is a string; undefined when absent; a 400 naming it otherwise. */
export function optionalString(
  message: Record<string, unknown>,
  key: string,
  where: string,
): string | undefined {
  const v = message[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") {
    throw invalidRequest(`'${where}.${key}' must be a string`, `${where}.${key}`, "invalid_type");
  }
  return v;
}

/** The tool fields of a message (`tool_calls` of an assistant turn, `tool_call_id` and `name`). */
function toolFields(message: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of ["tool_call_id", "name"]) {
    const v = optionalString(message, key, where);
    if (v !== undefined) out[key] = v;
  }
  const calls = message.tool_calls;
  if (calls === undefined || calls === null) return out;
  if (!Array.isArray(calls)) {
    throw invalidRequest(
      `'${where}.tool_calls' must be an array`,
      `${where}.tool_calls`,
      "invalid_type",
    );
  }
  out.tool_calls = calls.map((call, k) => {
    const at = `${where}.tool_calls[${k}]`;
    const fn = isRecord(call) ? call.function : undefined;
    if (!isRecord(fn) || typeof fn.name !== "string" || typeof fn.arguments !== "string") {
      throw invalidRequest(
        `'${at}' must be {"type": "function", "function": {"name": ..., "arguments": "<JSON text>"}}`,
        at,
        "invalid_type",
      );
    }
    return {
      id: isRecord(call) && typeof call.id === "string" ? call.id : "",
      type: "function",
      function: { name: fn.name, arguments: fn.arguments },
    };
  });
  return out;
}

/**
 * Validates `tools`: chat's `{"type": "function", "function": {name, ...}}`, or with `flat` the
 * Responses API's `{"type": "function", name, ...}`; `paths` names each entry in errors (default
 * `tools[i]`).
 */
export function parseTools(
  value: unknown,
  flat = false,
  paths?: readonly string[],
): ToolFunction[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw invalidRequest("'tools' must be an array", "tools", "invalid_type");
  }
  const names = new Set<string>();
  return value.map((tool, i) => {
    const at = paths?.[i] ?? `tools[${i}]`;
    if (!isRecord(tool) || tool.type !== "function" || (!flat && !isRecord(tool.function))) {
      throw invalidRequest(
        flat
          ? `'${at}' must be {"type": "function", "name": ...}`
          : `'${at}' must be {"type": "function", "function": {...}}`,
        at,
        "invalid_type",
      );
    }
    const fn = (flat ? tool : tool.function) as Record<string, unknown>;
    const where = flat ? at : `${at}.function`;
    if (typeof fn.name !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(fn.name)) {
      throw invalidRequest(
        `'${where}.name' must be 1 to 64 letters, digits, '_', '.' or '-'`,
        `${where}.name`,
      );
    }
    if (names.has(fn.name)) {
      throw invalidRequest(
        `'${where}.name' repeats '${fn.name}'`,
        `${where}.name`,
      );
    }
    names.add(fn.name);
    if (fn.description !== undefined && typeof fn.description !== "string") {
      throw invalidRequest(
        `'${where}.description' must be a string`,
        `${where}.description`,
        "invalid_type",
      );
    }
    const parameters = fn.parameters ?? { type: "object", properties: {} };
    if (!isRecord(parameters)) {
      throw invalidRequest(
        `'${where}.parameters' must be a JSON schema object`,
        `${where}.parameters`,
        "invalid_type",
      );
    }
    return {
      name: fn.name,
      ...(typeof fn.description === "string" ? { description: fn.description } : {}),
      parameters,
    };
  });
}

/**
 * Validates `tool_choice`: "none", "auto", "required", or a function named as chat
 * (`{"type": "function", "function": {"name"}}`) or, with `flat`, the Responses API does.
 */
export function parseToolChoice(
  value: unknown,
  tools: readonly ToolFunction[],
  flat = false,
): ToolChoice {
  if (value === undefined || value === null) return tools.length > 0 ? "auto" : "none";
  if (value === "none" || value === "auto" || value === "required") {
    if (value === "required" && tools.length === 0) {
      throw invalidRequest(
        "'tool_choice' is \"required\" but no 'tools' were given",
        "tool_choice",
      );
    }
    return value;
  }
  const named = flat ? value : isRecord(value) ? value.function : undefined;
  if (isRecord(value) && value.type === "function" && isRecord(named)) {
    const name = named.name;
    const field = flat ? "tool_choice.name" : "tool_choice.function.name";
    if (typeof name !== "string" || !tools.some((t) => t.name === name)) {
      throw invalidRequest(
        `'${field}' must name one of the tools, got ${JSON.stringify(name)}`,
        field,
      );
    }
    return { name };
  }
  throw invalidRequest(
    `'tool_choice' must be "none", "auto", "required" or ${
      flat ? '{"type": "function", "name": ...}' : '{"type": "function", "function": {"name": ...}}'
    }`,
    "tool_choice",
  );
}

/** Renders messages with the model's chat template; a template error is the request's fault. */
export function renderMessages(
  service: InferenceService,
  messages: readonly ChatMessage[],
  field = "messages",
  tools: readonly ToolFunction[] = [],
  options: ChatRenderOptions = {},
): string {
  try {
    return service.renderChat(messages, tools, options);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw invalidRequest(`The chat template rejected the messages: ${detail}`, field);
  }
}
