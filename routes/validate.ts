import type { SamplingOptions } from "../src/engine/sampler.ts";
import type { ChatMessage } from "../src/engine/chat_template.ts";
import type { InferenceService } from "../src/engine/service.ts";
import { ApiError, invalidRequest } from "./errors.ts";
import { CHAT_FIELDS, checkFields, COMPLETION_FIELDS } from "./fields.ts";

/** The generation fields shared by chat and text completions, validated. */
export interface GenerationRequest {
  /** The model asked for; undefined when the field was left out. */
  readonly model: string | undefined;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly sampling: SamplingOptions;
  readonly stop: string[];
  /** `max_completion_tokens` ?? `max_tokens`; undefined when neither was given. */
  readonly maxTokens: number | undefined;
  /** Alternatives per token when log-probabilities were asked for; undefined when not. */
  readonly logprobs: number | undefined;
}

/** A validated `POST /v1/chat/completions` body. */
export interface ChatRequest extends GenerationRequest {
  readonly messages: ChatMessage[];
}

/** A validated `POST /v1/completions` body. */
export interface CompletionRequest extends GenerationRequest {
  /** The prompt text, or its token ids. */
  readonly prompt: string | readonly number[];
}

const ROLES = new Set(["system", "developer", "user", "assistant", "tool", "function"]);

/** Reads a request body as a JSON object, or throws a 400 that says why not. */
export async function readJsonObject(request: Request): Promise<Record<string, unknown>> {
  const text = await request.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new ApiError(400, `Request body is not valid JSON: ${detail}`, {
      code: "invalid_json",
    });
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ApiError(400, "Request body must be a JSON object", { code: "invalid_json" });
  }
  return body as Record<string, unknown>;
}

/** Validates a chat completions body; unknown and unsupported fields are refused. */
export function parseChatRequest(body: Record<string, unknown>): ChatRequest {
  checkFields(body, CHAT_FIELDS);
  const messages = body.messages;
  if (messages === undefined || messages === null) {
    throw invalidRequest("Missing required field 'messages'", "messages", "missing_required");
  }
  if (!Array.isArray(messages)) {
    throw invalidRequest("'messages' must be an array", "messages", "invalid_type");
  }
  if (messages.length === 0) {
    throw invalidRequest("'messages' must not be empty", "messages", "empty_array");
  }
  const logprobs = boolean(body, "logprobs") ?? false;
  const top = integer(body, "top_logprobs", 0, 20);
  if (top !== undefined && !logprobs) {
    throw invalidRequest("'top_logprobs' needs 'logprobs' set to true", "top_logprobs");
  }
  return {
    ...parseGeneration(body),
    logprobs: logprobs ? top ?? 0 : undefined,
    messages: messages.map(parseMessage),
  };
}

/** Validates a text completions body; unknown and unsupported fields are refused. */
export function parseCompletionRequest(body: Record<string, unknown>): CompletionRequest {
  checkFields(body, COMPLETION_FIELDS);
  let prompt = body.prompt;
  // One prompt may come in a list of one: ["text"] or [[ids]].
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] !== "number") {
    prompt = prompt[0];
  }
  if (prompt === undefined || prompt === null) {
    throw invalidRequest("Missing required field 'prompt'", "prompt", "missing_required");
  }
  if (Array.isArray(prompt) && prompt.some((p) => typeof p !== "number")) {
    throw invalidRequest(
      "'prompt' must be one prompt: a string or a list of token ids (several prompts are not supported)",
      "prompt",
      "invalid_type",
    );
  }
  if (typeof prompt !== "string" && !Array.isArray(prompt)) {
    throw invalidRequest(
      "'prompt' must be a string or a list of token ids",
      "prompt",
      "invalid_type",
    );
  }
  if (prompt.length === 0) throw invalidRequest("'prompt' must not be empty", "prompt");
  if (Array.isArray(prompt)) {
    prompt.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0) {
        throw invalidRequest(`'prompt[${i}]' must be a token id`, `prompt[${i}]`, "invalid_type");
      }
    });
  }
  return {
    ...parseGeneration(body),
    logprobs: integer(body, "logprobs", 0, 5),
    prompt: prompt as string | number[],
  };
}

function parseMessage(value: unknown, index: number): ChatMessage {
  const where = `messages[${index}]`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidRequest(`'${where}' must be an object`, where, "invalid_type");
  }
  const { role, content } = value as Record<string, unknown>;
  if (typeof role !== "string") {
    throw invalidRequest(`'${where}.role' must be a string`, `${where}.role`, "invalid_type");
  }
  if (!ROLES.has(role)) {
    throw invalidRequest(
      `'${where}.role' must be one of ${[...ROLES].join(", ")}, got '${role}'`,
      `${where}.role`,
    );
  }
  if (typeof content === "string") return { role, content };
  if ((content === null || content === undefined) && role === "assistant") {
    return { role, content: "" };
  }
  if (Array.isArray(content)) {
    const texts = content.map((part, k) => {
      const p = part as Record<string, unknown> | null;
      if (typeof p !== "object" || p === null || p.type !== "text" || typeof p.text !== "string") {
        throw invalidRequest(
          `'${where}.content[${k}]' must be a text part {"type":"text","text":...}`,
          `${where}.content[${k}]`,
          "invalid_type",
        );
      }
      return p.text;
    });
    return { role, content: texts.join("") };
  }
  throw invalidRequest(
    `'${where}.content' must be a string or an array of text parts`,
    `${where}.content`,
    "invalid_type",
  );
}

function parseGeneration(body: Record<string, unknown>): Omit<GenerationRequest, "logprobs"> {
  const model = modelName(body);
  const n = integer(body, "n", 1, 128);
  if (n !== undefined && n > 1) {
    throw invalidRequest("'n' greater than 1 is not supported", "n", "unsupported");
  }
  const stream = boolean(body, "stream") ?? false;
  let includeUsage = false;
  const streamOptions = body.stream_options;
  if (streamOptions !== undefined && streamOptions !== null) {
    if (typeof streamOptions !== "object" || Array.isArray(streamOptions)) {
      throw invalidRequest("'stream_options' must be an object", "stream_options", "invalid_type");
    }
    const include = (streamOptions as Record<string, unknown>).include_usage;
    if (include !== undefined && include !== null && typeof include !== "boolean") {
      throw invalidRequest(
        "'stream_options.include_usage' must be a boolean",
        "stream_options.include_usage",
        "invalid_type",
      );
    }
    includeUsage = include === true;
    for (const [key, value] of Object.entries(streamOptions)) {
      if (key === "include_obfuscation" && (value === null || typeof value === "boolean")) continue;
      if (key === "include_usage") continue;
      throw invalidRequest(
        `'stream_options.${key}' is not supported: only include_usage (and include_obfuscation, a boolean with no effect)`,
        `stream_options.${key}`,
        "unsupported_parameter",
      );
    }
  }

  const sampling: Mutable<SamplingOptions> = {};
  const set = <K extends keyof SamplingOptions>(key: K, value: SamplingOptions[K] | undefined) => {
    if (value !== undefined) sampling[key] = value;
  };
  set("temperature", number(body, "temperature", 0, 2));
  set("topP", number(body, "top_p", 0, 1));
  const topK = integer(body, "top_k", -1, 1 << 30);
  set("topK", topK === undefined ? undefined : Math.max(0, topK));
  set("minP", number(body, "min_p", 0, 1));
  set("presencePenalty", number(body, "presence_penalty", -2, 2));
  set("frequencyPenalty", number(body, "frequency_penalty", -2, 2));
  const repetition = number(body, "repetition_penalty", 0, 10);
  if (repetition === 0) {
    throw invalidRequest("'repetition_penalty' must be greater than 0", "repetition_penalty");
  }
  set("repetitionPenalty", repetition);
  set("seed", integer(body, "seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
  set("logitBias", logitBias(body.logit_bias));

  const maxCompletion = integer(body, "max_completion_tokens", 1, Number.MAX_SAFE_INTEGER);
  const maxTokens = integer(body, "max_tokens", 1, Number.MAX_SAFE_INTEGER);
  return {
    model,
    stream,
    includeUsage,
    sampling,
    stop: stopStrings(body.stop),
    maxTokens: maxCompletion ?? maxTokens,
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The `model` field: a string, or undefined when left out. */
export function modelName(body: Record<string, unknown>): string | undefined {
  const model = body.model;
  if (model === undefined || model === null) return undefined;
  if (typeof model !== "string") {
    throw invalidRequest("'model' must be a string", "model", "invalid_type");
  }
  return model;
}

/** A number field between `min` and `max` (an integer when `whole`), undefined when absent. */
export function number(
  body: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
  whole = false,
): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !(whole ? Number.isInteger(value) : Number.isFinite(value))) {
    const kind = whole ? "an integer" : "a number";
    throw invalidRequest(`'${field}' must be ${kind}`, field, "invalid_type");
  }
  if (value < min || value > max) {
    throw invalidRequest(`'${field}' must be between ${min} and ${max}, got ${value}`, field);
  }
  return value;
}

/** An integer field between `min` and `max`, undefined when absent. */
export function integer(
  body: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
): number | undefined {
  return number(body, field, min, max, true);
}

/** A boolean field, undefined when absent. */
export function boolean(body: Record<string, unknown>, field: string): boolean | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") {
    throw invalidRequest(`'${field}' must be a boolean`, field, "invalid_type");
  }
  return value;
}

function stopStrings(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return value === "" ? [] : [value];
  if (!Array.isArray(value) || !value.every((s) => typeof s === "string")) {
    throw invalidRequest("'stop' must be a string or an array of strings", "stop", "invalid_type");
  }
  if (value.length > 4) {
    throw invalidRequest(`'stop' may hold at most 4 strings, got ${value.length}`, "stop");
  }
  return value.filter((s) => s !== "");
}

function logitBias(value: unknown): Map<number, number> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalidRequest("'logit_bias' must be an object", "logit_bias", "invalid_type");
  }
  const bias = new Map<number, number>();
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const id = Number(key);
    if (!/^\d+$/.test(key) || !Number.isSafeInteger(id)) {
      throw invalidRequest(`'logit_bias' key '${key}' is not a token id`, "logit_bias");
    }
    if (typeof v !== "number" || !Number.isFinite(v) || v < -100 || v > 100) {
      throw invalidRequest(
        `'logit_bias[${key}]' must be a number between -100 and 100`,
        `logit_bias.${key}`,
      );
    }
    bias.set(id, v);
  }
  return bias;
}

/** Renders messages with the model's chat template; a template error is the request's fault. */
export function renderMessages(
  service: InferenceService,
  messages: readonly ChatMessage[],
  field = "messages",
): string {
  try {
    return service.renderChat(messages);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw invalidRequest(`The chat template rejected the messages: ${detail}`, field);
  }
}
