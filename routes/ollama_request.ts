/**
 * Reading the bodies of Ollama's `POST /api/chat` and `POST /api/generate` into requests: every
 * field and option honoured, accepted with no effect, or refused with a 400 naming it; Ollama's
 * messages turned into the chat messages the model's template reads.
 */
import type { ChatMessage } from "../src/engine/chat_template.ts";
import type { SamplingOptions } from "../src/engine/sampler.ts";
import type { ToolFunction } from "../src/engine/tool_calls.ts";
import { invalidRequest } from "./errors.ts";
import {
  checkFields,
  type FieldTable,
  OLLAMA_CHAT_FIELDS,
  OLLAMA_GENERATE_FIELDS,
  OLLAMA_OPTIONS,
} from "./fields.ts";
import { isRecord, optionalString, parseTools } from "./messages.ts";
import {
  boolean,
  integer,
  mirostat,
  modelName,
  number,
  repetitionPenalty,
  type ResponseFormat,
  stopList,
  tokenIds,
} from "./validate.ts";

/** What `/api/chat` and `/api/generate` share: the model, the output and its sampling. */
export interface OllamaGeneration {
  readonly model: string | undefined;
  /** Default true. */
  readonly stream: boolean;
  readonly sampling: SamplingOptions;
  readonly stop: string[];
  /** `options.num_predict`; undefined: up to the context's end (and the server's cap). */
  readonly maxTokens: number | undefined;
  /** `format`; undefined for free text. */
  readonly responseFormat: ResponseFormat | undefined;
  /** `think`: whether a thinking model thinks; undefined when left to the template. */
  readonly think: boolean | undefined;
  /** Alternatives per token with `logprobs`; undefined without. */
  readonly logprobs: number | undefined;
  /** `truncate: true`: a chat's oldest turns are dropped until it fits the context. */
  readonly truncate: boolean;
}

/** A validated `POST /api/chat` body. */
export interface OllamaChatRequest extends OllamaGeneration {
  /** None: the request only loads the model. */
  readonly messages: ChatMessage[];
  readonly tools: ToolFunction[];
}

/** A validated `POST /api/generate` body. */
export interface OllamaGenerateRequest extends OllamaGeneration {
  /** "" (with no `context`): the request only loads the model. */
  readonly prompt: string;
  readonly system: string | undefined;
  /** The prompt is not templated. */
  readonly raw: boolean;
  /** Token ids of an earlier answer's `context`, ahead of the prompt. */
  readonly context: readonly number[];
  /** The text after the answer, which fills in the middle; undefined: none. */
  readonly suffix: string | undefined;
}

/** Ollama's sampling defaults, where they differ from the engine's. */
const DEFAULTS: SamplingOptions = { temperature: 0.8, topK: 40, topP: 0.9 };

const MAX_STOP = 32;

/** Validates a `/api/chat` body. */
export function parseOllamaChat(body: Record<string, unknown>): OllamaChatRequest {
  const generation = parseGeneration(body, OLLAMA_CHAT_FIELDS);
  const messages = body.messages ?? [];
  if (!Array.isArray(messages)) {
    throw invalidRequest("'messages' must be an array", "messages", "invalid_type");
  }
  return {
    ...generation,
    messages: messages.map(ollamaMessage),
    tools: parseTools(body.tools),
  };
}

/** Validates a `/api/generate` body. */
export function parseOllamaGenerate(body: Record<string, unknown>): OllamaGenerateRequest {
  const generation = parseGeneration(body, OLLAMA_GENERATE_FIELDS);
  const raw = boolean(body, "raw") ?? false;
  const system = optionalText(body, "system");
  const context = tokenIds(body, "context");
  const suffix = optionalText(body, "suffix");
  const other = system !== undefined ? "system" : context.length > 0 ? "context" : undefined;
  if (other !== undefined && (raw || suffix !== undefined)) {
    throw invalidRequest(
      raw
        ? `'raw' leaves the prompt as it is: it cannot take '${other}'`
        : `A prompt with a 'suffix' fills in the middle: it cannot take '${other}'`,
      other,
    );
  }
  return {
    ...generation,
    prompt: optionalText(body, "prompt") ?? "",
    system,
    raw,
    context,
    suffix,
  };
}

function parseGeneration(body: Record<string, unknown>, fields: FieldTable): OllamaGeneration {
  checkFields(body, fields);
  const logprobs = boolean(body, "logprobs") ?? false;
  const top = integer(body, "top_logprobs", 0, 20) ?? 0;
  const options = parseOptions(body.options);
  return {
    model: ollamaModelName(modelName(body)),
    stream: boolean(body, "stream") ?? true,
    ...options,
    responseFormat: format(body.format),
    think: think(body.think),
    logprobs: logprobs ? top : undefined,
    truncate: boolean(body, "truncate") ?? false,
  };
}

/** The model's name without Ollama's default tag (`:latest`), which names the same model. */
export function ollamaModelName(name: string | undefined): string | undefined {
  return name?.endsWith(":latest") ? name.slice(0, -":latest".length) : name;
}

/** `options`: sampling, stop strings and the token cap, with Ollama's defaults. */
function parseOptions(
  value: unknown,
): Pick<OllamaGeneration, "sampling" | "stop" | "maxTokens"> {
  if (value === undefined || value === null) {
    return { sampling: DEFAULTS, stop: [], maxTokens: undefined };
  }
  if (!isRecord(value)) {
    throw invalidRequest("'options' must be an object", "options", "invalid_type");
  }
  // Named as `options.<name>` in every error.
  const options = Object.fromEntries(Object.entries(value).map(([k, v]) => [`options.${k}`, v]));
  checkFields(
    options,
    Object.fromEntries(Object.entries(OLLAMA_OPTIONS).map(([k, rule]) => [`options.${k}`, rule])),
  );
  const sampling: { -readonly [K in keyof SamplingOptions]: SamplingOptions[K] } = { ...DEFAULTS };
  const set = <K extends keyof SamplingOptions>(key: K, value: SamplingOptions[K] | undefined) => {
    if (value !== undefined) sampling[key] = value;
  };
  set("temperature", number(options, "options.temperature", 0, 2));
  set("topK", integer(options, "options.top_k", 0, 1 << 30));
  set("topP", number(options, "options.top_p", 0, 1));
  set("minP", number(options, "options.min_p", 0, 1));
  set("typicalP", number(options, "options.typical_p", 0, 1));
  set("mirostat", mirostat(options, "options."));
  set("presencePenalty", number(options, "options.presence_penalty", -2, 2));
  set("frequencyPenalty", number(options, "options.frequency_penalty", -2, 2));
  set("repetitionPenalty", repetitionPenalty(options, "options.repeat_penalty"));
  const seed = integer(options, "options.seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (seed !== undefined && seed !== -1) sampling.seed = seed;
  const predict = integer(options, "options.num_predict", -2, Number.MAX_SAFE_INTEGER);
  return {
    sampling,
    stop: stopList(options, "options.stop", MAX_STOP),
    maxTokens: predict === undefined || predict < 0 ? undefined : predict,
  };
}

/** `format`: "json" (any JSON object) or a JSON schema; "" or absent for free text. */
function format(value: unknown): ResponseFormat | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (value === "json") return { type: "json_object" };
  if (isRecord(value)) {
    return { type: "json_schema", name: "response", schema: value, strict: true };
  }
  throw invalidRequest("'format' must be \"json\" or a JSON schema (an object)", "format");
}

/** `think`: a boolean or a level; the levels all mean true (there is no budget per level). */
function think(value: unknown): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "boolean") return value;
  if (value === "low" || value === "medium" || value === "high" || value === "max") return true;
  throw invalidRequest("'think' must be a boolean or one of low, medium, high, max", "think");
}

function optionalText(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") {
    throw invalidRequest(`'${field}' must be a string`, field, "invalid_type");
  }
  return value;
}

const ROLES = new Set(["system", "user", "assistant", "tool"]);

/** One of Ollama's chat messages, `messages[index]`, as the chat template reads it. */
function ollamaMessage(value: unknown, index: number): ChatMessage {
  const where = `messages[${index}]`;
  if (!isRecord(value)) throw invalidRequest(`'${where}' must be an object`, where, "invalid_type");
  const role = typeof value.role === "string" ? value.role.toLowerCase() : undefined;
  if (role === undefined || !ROLES.has(role)) {
    throw invalidRequest(
      `'${where}.role' must be one of ${[...ROLES].join(", ")}`,
      `${where}.role`,
      role === undefined ? "invalid_type" : "invalid_value",
    );
  }
  const text = (field: string) => optionalString(value, field, where);
  const images = value.images;
  if (Array.isArray(images) ? images.length > 0 : images !== undefined && images !== null) {
    throw invalidRequest(
      `'${where}.images' is not supported: the model reads text`,
      `${where}.images`,
      "unsupported_parameter",
    );
  }
  const thinking = text("thinking");
  const toolName = text("tool_name");
  const toolCallId = text("tool_call_id");
  const calls = toolCalls(value.tool_calls, `${where}.tool_calls`);
  const content = text("content") ?? "";
  return {
    role,
    content: calls.length > 0 && content === "" ? null : content,
    ...(thinking === undefined ? {} : { reasoning_content: thinking }),
    ...(calls.length === 0 ? {} : { tool_calls: calls }),
    ...(toolName === undefined ? {} : { name: toolName }),
    ...(toolCallId === undefined ? {} : { tool_call_id: toolCallId }),
  };
}

/** An assistant's `tool_calls`: `{function: {name, arguments: {...}}}`, arguments as JSON text. */
function toolCalls(value: unknown, where: string): object[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw invalidRequest(`'${where}' must be an array`, where, "invalid_type");
  }
  return value.map((call, k) => {
    const fn = isRecord(call) ? call.function : undefined;
    if (!isRecord(fn) || typeof fn.name !== "string" || !isRecord(fn.arguments ?? {})) {
      throw invalidRequest(
        `'${where}[${k}]' must be {"function": {"name": ..., "arguments": {...}}}`,
        `${where}[${k}]`,
        "invalid_type",
      );
    }
    return {
      id: isRecord(call) && typeof call.id === "string" ? call.id : "",
      type: "function",
      function: { name: fn.name, arguments: JSON.stringify(fn.arguments ?? {}) },
    };
  });
}
