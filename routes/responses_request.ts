/**
 * Reading a `POST /v1/responses` body into a {@link ResponseRequest}: every field honoured or
 * refused with a 400 naming it, the input items turned into chat messages.
 */
import type { ChatMessage } from "../src/engine/chat_template.ts";
import type { ToolFunction } from "../src/engine/tool_calls.ts";
import { invalidRequest } from "./errors.ts";
import { checkFields, RESPONSE_FIELDS } from "./fields.ts";
import { boolean, integer, modelName, number, type ResponseFormat } from "./validate.ts";
import type { ToolChoice } from "./messages.ts";
import { fromBase64, toBase64 } from "../src/storage/bytes.ts";
import {
  effortVariables,
  isRecord,
  parseToolChoice,
  parseTools,
  partsText,
  REASONING_EFFORTS,
  stringField,
} from "./messages.ts";

/** The text parts of Responses messages. */
const TEXT_PARTS = ["input_text", "output_text"];

const LOGPROBS_INCLUDE = "message.output_text.logprobs";
const REASONING_INCLUDE = "reasoning.encrypted_content";

/**
 * How reasoning text travels in `encrypted_content`: not encrypted (Rill keeps no state), the
 * text in base64 after this prefix, so that a client that sends it back gives it to the template.
 */
const CARRIED = "rill-reasoning:";

/** A validated `POST /v1/responses` body. */
export interface ResponseRequest {
  readonly model: string | undefined;
  /** The input as chat messages (after the previous response's conversation, if any). */
  readonly input: ChatMessage[];
  readonly instructions: string | null;
  readonly previousResponseId: string | null;
  readonly store: boolean;
  readonly stream: boolean;
  readonly maxOutputTokens: number | undefined;
  /** `truncation`: "auto" drops the oldest turns until the input fits the context. */
  readonly truncation: "auto" | "disabled";
  readonly temperature: number | undefined;
  readonly topP: number | undefined;
  /** Alternatives per token when `include` asks for logprobs; undefined when it does not. */
  readonly logprobs: number | undefined;
  readonly topLogprobs: number;
  readonly metadata: Record<string, string>;
  /** The function tools offered to the model, a namespace's named `{namespace}.{name}`. */
  readonly tools: ToolFunction[];
  /** The namespaced tools, by the name the model calls them. */
  readonly namespaced: ReadonlyMap<string, { readonly namespace: string; readonly name: string }>;
  /** Template variables `reasoning.effort` asks for (`enable_thinking`). */
  readonly templateVariables: Readonly<Record<string, unknown>>;
  /** Reasoning items carry their text in `encrypted_content` (see `carryReasoning`). */
  readonly carriesReasoning: boolean;
  readonly toolChoice: ToolChoice;
  readonly parallelToolCalls: boolean;
  /** `text.format` when it asks for JSON; undefined for plain text. */
  readonly responseFormat: ResponseFormat | undefined;
}

const ROLES = new Set(["user", "system", "developer", "assistant"]);

/** Validates a responses body; unknown and unsupported fields are refused. */
export function parseResponseRequest(body: Record<string, unknown>): ResponseRequest {
  checkFields(body, RESPONSE_FIELDS);
  const instructions = body.instructions ?? null;
  if (instructions !== null && typeof instructions !== "string") {
    throw invalidRequest("'instructions' must be a string", "instructions", "invalid_type");
  }
  const previous = body.previous_response_id ?? null;
  if (previous !== null && typeof previous !== "string") {
    throw invalidRequest(
      "'previous_response_id' must be a string",
      "previous_response_id",
      "invalid_type",
    );
  }
  const include = body.include ?? [];
  if (!Array.isArray(include)) {
    throw invalidRequest("'include' must be an array", "include", "invalid_type");
  }
  include.forEach((value, i) => {
    if (value !== LOGPROBS_INCLUDE && value !== REASONING_INCLUDE) {
      throw invalidRequest(
        `'include[${i}]' is not supported: only '${LOGPROBS_INCLUDE}' and '${REASONING_INCLUDE}'`,
        `include[${i}]`,
        "unsupported_parameter",
      );
    }
  });
  const topLogprobs = integer(body, "top_logprobs", 0, 20) ?? 0;
  const responseFormat = checkOptions(body);
  const { tools, namespaced } = responseTools(body.tools);
  const toolChoice = parseToolChoice(body.tool_choice, tools, true);
  if (responseFormat !== undefined && tools.length > 0 && toolChoice !== "none") {
    throw invalidRequest(
      "'text.format' cannot ask for JSON with 'tools' unless 'tool_choice' is \"none\"",
      "text.format",
    );
  }
  return {
    tools,
    namespaced,
    templateVariables: reasoningVariables(body.reasoning),
    carriesReasoning: include.includes(REASONING_INCLUDE),
    toolChoice,
    parallelToolCalls: boolean(body, "parallel_tool_calls") ?? true,
    responseFormat,
    model: modelName(body),
    input: parseInput(body.input),
    instructions,
    previousResponseId: previous,
    store: boolean(body, "store") ?? true,
    stream: boolean(body, "stream") ?? false,
    maxOutputTokens: integer(body, "max_output_tokens", 1, Number.MAX_SAFE_INTEGER),
    truncation: truncation(body.truncation),
    temperature: number(body, "temperature", 0, 2),
    topP: number(body, "top_p", 0, 1),
    logprobs: include.includes(LOGPROBS_INCLUDE) ? topLogprobs : undefined,
    topLogprobs,
    metadata: parseMetadata(body.metadata),
  };
}

function truncation(value: unknown): "auto" | "disabled" {
  if (value === undefined || value === null || value === "disabled") return "disabled";
  if (value === "auto") return "auto";
  throw invalidRequest("'truncation' must be auto or disabled", "truncation");
}

/** `encrypted_content` carrying a reasoning item's text back through a client. */
export function carryReasoning(text: string): string {
  return CARRIED + toBase64(new TextEncoder().encode(text));
}

/** The text `carryReasoning` carried, or undefined for other content (another server's). */
function carriedReasoning(value: unknown): string | undefined {
  if (typeof value !== "string" || !value.startsWith(CARRIED)) return undefined;
  try {
    const bytes = fromBase64(value.slice(CARRIED.length));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

const SUMMARIES = new Set(["auto", "concise", "detailed"]);

/**
 * `reasoning`: an `effort` of none or minimal asks a thinking model's template not to think
 * (`enable_thinking` false), any other to think; no summary is written (the reasoning item holds
 * the whole text), so `summary` only asks for what is there.
 */
function reasoningVariables(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  const field = "reasoning";
  if (!isRecord(value)) throw invalidRequest(`'${field}' must be an object`, field, "invalid_type");
  const allowed: Record<string, (v: unknown) => boolean> = {
    effort: (v) => typeof v === "string" && REASONING_EFFORTS.has(v),
    summary: (v) => typeof v === "string" && SUMMARIES.has(v),
    generate_summary: (v) => typeof v === "string" && SUMMARIES.has(v),
    context: (v) => v === "auto",
    mode: (v) => v === "standard",
  };
  for (const [key, v] of Object.entries(value)) {
    if (v === null || v === undefined) continue;
    const check = allowed[key];
    if (check === undefined || !check(v)) {
      throw invalidRequest(
        `'${field}.${key}' ${JSON.stringify(v)} is not supported: effort (none to max), ` +
          "summary (auto, concise, detailed), context auto and mode standard",
        `${field}.${key}`,
        "unsupported_parameter",
      );
    }
  }
  const effort = value.effort;
  return typeof effort === "string" ? effortVariables(effort) : {};
}

/**
 * Built-in tool types (web search, file search, code interpreter, ..., and the shell and patch
 * tools a client runs): the model is offered function tools only.
 */
const HOSTED =
  /^(web_search|file_search|code_interpreter|image_generation|computer|local_shell|mcp|tool_search|shell|apply_patch)/;

/**
 * `tools`: function tools, and a namespace's function tools (Codex's), named
 * `{namespace}.{name}` for the model. Hosted tools are left out: the model is not told of
 * them. Custom (freeform) tools are refused.
 */
function responseTools(value: unknown): Pick<ResponseRequest, "tools" | "namespaced"> {
  const namespaced = new Map<string, { namespace: string; name: string }>();
  if (value === undefined || value === null) return { tools: [], namespaced };
  if (!Array.isArray(value)) {
    throw invalidRequest("'tools' must be an array", "tools", "invalid_type");
  }
  const tools: ToolFunction[] = [];
  const functions: unknown[] = [];
  const paths: string[] = [];
  value.forEach((tool, i) => {
    const at = `tools[${i}]`;
    const type = isRecord(tool) ? tool.type : undefined;
    if (type === "function") {
      functions.push(tool);
      paths.push(at);
    } else if (type === "namespace") {
      const { name, tools: inner } = tool as Record<string, unknown>;
      if (typeof name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
        throw invalidRequest(
          `'${at}.name' must be 1 to 64 letters, digits, '_' or '-'`,
          `${at}.name`,
        );
      }
      if (!Array.isArray(inner)) {
        throw invalidRequest(`'${at}.tools' must be an array`, `${at}.tools`, "invalid_type");
      }
      const members = parseTools(inner, true, inner.map((_, k) => `${at}.tools[${k}]`));
      for (const member of members) {
        const full = `${name}.${member.name}`;
        namespaced.set(full, { namespace: name, name: member.name });
        tools.push({ ...member, name: full });
      }
    } else if (typeof type === "string" && HOSTED.test(type)) {
      return;
    } else {
      throw invalidRequest(
        `'${at}.type' ${
          JSON.stringify(type)
        } is not supported: function and namespace tools (hosted tools are left out)`,
        `${at}.type`,
        "unsupported_parameter",
      );
    }
  });
  return { tools: [...parseTools(functions, true, paths), ...tools], namespaced };
}

/**
 * Checks `text` and `stream_options`, which hold nothing Rill does not do; returns the JSON
 * format `text.format` asks for, if any.
 */
function checkOptions(body: Record<string, unknown>): ResponseFormat | undefined {
  const text = objectField(body, "text");
  let format: ResponseFormat | undefined;
  for (const [key, value] of Object.entries(text)) {
    if (key === "format") format = parseTextFormat(value);
    else if (!(key === "verbosity" && (value === null || value === "medium"))) {
      throw invalidRequest(
        `'text.${key}' is not supported`,
        `text.${key}`,
        "unsupported_parameter",
      );
    }
  }
  for (const [key, value] of Object.entries(objectField(body, "stream_options"))) {
    if (!(key === "include_obfuscation" && (value === null || typeof value === "boolean"))) {
      throw invalidRequest(
        `'stream_options.${key}' is not supported`,
        `stream_options.${key}`,
        "unsupported_parameter",
      );
    }
  }
  return format;
}

/** `text.format`: plain text, any JSON object, or JSON matching a named schema. */
function parseTextFormat(value: unknown): ResponseFormat | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalidRequest("'text.format' must be an object", "text.format", "invalid_type");
  }
  const format = value as Record<string, unknown>;
  switch (format.type) {
    case "text":
      return undefined;
    case "json_object":
      return { type: "json_object" };
    case "json_schema": {
      if (typeof format.name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(format.name)) {
        throw invalidRequest(
          "'text.format.name' must be 1 to 64 letters, digits, '_' or '-'",
          "text.format.name",
        );
      }
      const schema = format.schema ?? {};
      if (typeof schema !== "boolean" && (typeof schema !== "object" || Array.isArray(schema))) {
        throw invalidRequest(
          "'text.format.schema' must be a JSON schema object",
          "text.format.schema",
          "invalid_type",
        );
      }
      return { type: "json_schema", name: format.name, schema, strict: format.strict === true };
    }
    default:
      throw invalidRequest(
        `'text.format.type' must be one of text, json_object, json_schema, ${
          format.type === undefined ? "and is missing" : `got ${JSON.stringify(format.type)}`
        }`,
        "text.format.type",
      );
  }
}

function objectField(body: Record<string, unknown>, field: string): Record<string, unknown> {
  const value = body[field];
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalidRequest(`'${field}' must be an object`, field, "invalid_type");
  }
  return value as Record<string, unknown>;
}

/** `input`: a string (one user message) or a list of messages with text content. */
function parseInput(input: unknown): ChatMessage[] {
  if (input === undefined || input === null) {
    throw invalidRequest("Missing required field 'input'", "input", "missing_required");
  }
  if (typeof input === "string") return [{ role: "user", content: input }];
  if (!Array.isArray(input)) {
    throw invalidRequest(
      "'input' must be a string or an array of messages",
      "input",
      "invalid_type",
    );
  }
  if (input.length === 0) throw invalidRequest("'input' must not be empty", "input", "empty_array");
  const messages: ChatMessage[] = [];
  // A reasoning item goes with the assistant turn that follows it.
  let reasoning: string | undefined;
  const withReasoning = (turns: ChatMessage[]): ChatMessage[] => {
    if (reasoning === undefined || turns[0]?.role !== "assistant") return turns;
    const [first, ...rest] = turns;
    const joined = { ...first!, reasoning_content: reasoning };
    reasoning = undefined;
    return [joined, ...rest];
  };
  input.forEach((value, i) => {
    const where = `input[${i}]`;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw invalidRequest(`'${where}' must be an object`, where, "invalid_type");
    }
    const { type, role, content } = value as Record<string, unknown>;
    if (type === "reasoning") {
      reasoning = reasoningText(value as Record<string, unknown>, where);
      return;
    }
    if (type === "function_call" || type === "function_call_output") {
      messages.push(
        ...withReasoning(toolItem(value as Record<string, unknown>, where, messages.at(-1))),
      );
      return;
    }
    if (type !== undefined && type !== "message") {
      throw invalidRequest(
        `'${where}.type' '${type}' is not supported: only messages with text content, reasoning, function_call and function_call_output`,
        `${where}.type`,
        "unsupported_parameter",
      );
    }
    if (typeof role !== "string" || !ROLES.has(role)) {
      throw invalidRequest(
        `'${where}.role' must be one of ${[...ROLES].join(", ")}`,
        `${where}.role`,
        "invalid_value",
      );
    }
    messages.push(
      ...withReasoning([{ role, content: partsText(content, `${where}.content`, TEXT_PARTS) }]),
    );
  });
  return messages;
}

/** The text of a `reasoning` input item: its `reasoning_text` content, else its summary. */
function reasoningText(item: Record<string, unknown>, where: string): string {
  const parts = (field: string, kind: string): string | undefined => {
    const list = item[field];
    if (list === undefined || list === null) return undefined;
    if (!Array.isArray(list)) {
      throw invalidRequest(
        `'${where}.${field}' must be an array`,
        `${where}.${field}`,
        "invalid_type",
      );
    }
    return list.map((part, k) => {
      const p = part as Record<string, unknown> | null;
      if (typeof p !== "object" || p === null || p.type !== kind || typeof p.text !== "string") {
        throw invalidRequest(
          `'${where}.${field}[${k}]' must be {"type": "${kind}", "text": ...}`,
          `${where}.${field}[${k}]`,
          "invalid_type",
        );
      }
      return p.text;
    }).join("");
  };
  const content = parts("content", "reasoning_text");
  if (content !== undefined && content !== "") return content;
  return carriedReasoning(item.encrypted_content) ?? parts("summary", "summary_text") ?? "";
}

/**
 * A `function_call` input item as an assistant turn's tool call (joined to the turn before
 * when that is one, which it replaces), or a `function_call_output` as a tool message.
 */
function toolItem(
  item: Record<string, unknown>,
  where: string,
  last: ChatMessage | undefined,
): ChatMessage[] {
  const string = (field: string) => stringField(item, field, where);
  if (item.type === "function_call_output") {
    const output = Array.isArray(item.output)
      ? partsText(item.output, `${where}.output`, TEXT_PARTS)
      : string("output");
    return [{ role: "tool", tool_call_id: string("call_id"), content: output }];
  }
  const namespace = item.namespace === undefined || item.namespace === null
    ? ""
    : `${string("namespace")}.`;
  const call = {
    id: string("call_id"),
    type: "function",
    function: { name: namespace + string("name"), arguments: string("arguments") },
  };
  if (last?.role === "assistant" && Array.isArray(last.tool_calls)) {
    (last.tool_calls as unknown[]).push(call);
    return [];
  }
  return [{ role: "assistant", content: null, tool_calls: [call] }];
}

function parseMetadata(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (
    typeof value !== "object" || Array.isArray(value) ||
    !Object.values(value).every((v) => typeof v === "string")
  ) {
    throw invalidRequest("'metadata' must be an object of strings", "metadata", "invalid_type");
  }
  return value as Record<string, string>;
}
