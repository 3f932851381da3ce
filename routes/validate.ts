import type { MirostatOptions, SamplingOptions } from "../src/engine/sampler.ts";
import { DRY_BREAKERS, type DryOptions } from "../src/engine/dry.ts";
import type { ChatMessage } from "../src/engine/chat_template.ts";
import type { ToolFunction } from "../src/engine/tool_calls.ts";
import { ApiError, invalidRequest } from "./errors.ts";
import { CHAT_FIELDS, checkFields, COMPLETION_FIELDS } from "./fields.ts";
import {
  effortVariables,
  isRecord,
  messageList,
  parseMessage,
  parseToolChoice,
  parseTools,
  partsText,
  REASONING_EFFORTS,
  type ToolChoice,
} from "./messages.ts";

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
  /** Choices to generate for the prompt (`n`, default 1). */
  readonly n: number;
  /** `stop_token_ids`: ids that end a choice as the end-of-sequence token does. */
  readonly stopTokenIds: readonly number[];
  /** `ignore_eos`: the end-of-sequence token ends nothing. */
  readonly ignoreEos: boolean;
  /** `min_tokens`: no ending token before this many tokens. */
  readonly minTokens: number;
  /** `structured_outputs` (vLLM's): the output is one of some texts, a regex's or JSON's. */
  readonly structured: StructuredOutput | undefined;
}

/** What `structured_outputs` asks the output to be. */
export type StructuredOutput =
  | { readonly kind: "choice"; readonly choices: readonly string[] }
  | { readonly kind: "regex"; readonly pattern: string }
  /** A GBNF grammar, given in `field` (`structured_outputs.grammar` or llama.cpp's `grammar`). */
  | { readonly kind: "grammar"; readonly grammar: string; readonly field: string }
  | { readonly kind: "json"; readonly schema: unknown }
  | { readonly kind: "json_object" };

/** `response_format`: free text, any JSON object, or JSON matching a schema. */
export type ResponseFormat =
  | { readonly type: "json_object" }
  | {
    readonly type: "json_schema";
    readonly name: string;
    readonly schema: unknown;
    readonly strict: boolean;
  };

/** A validated `POST /v1/chat/completions` body. */
export interface ChatRequest extends GenerationRequest {
  readonly messages: ChatMessage[];
  /** Undefined for free text. */
  readonly responseFormat: ResponseFormat | undefined;
  readonly tools: ToolFunction[];
  readonly toolChoice: ToolChoice;
  /** Whether one answer may hold several calls (default true). */
  readonly parallelToolCalls: boolean;
  /** `chat_template_kwargs`: extra variables for the chat template (none: empty). */
  readonly templateVariables: Readonly<Record<string, unknown>>;
  /** `continue_final_message`: the answer continues the final (assistant) message. */
  readonly continueFinal: boolean;
  /** `thinking_token_budget` (vLLM's): most tokens of a thinking model's reasoning block. */
  readonly reasoningBudget: number | undefined;
  /** `prediction`: the text the answer is expected to repeat for the most part; none: undefined. */
  readonly prediction: string | undefined;
}

/** A validated `POST /v1/completions` body. */
export interface CompletionRequest extends GenerationRequest {
  /** The prompts, each a text or token ids; each gets `n` choices. */
  readonly prompts: readonly (string | readonly number[])[];
  /** `echo`: each choice's text starts with its prompt (and its logprobs with the prompt's). */
  readonly echo: boolean;
  /** `suffix`: the text after the completion, which fills in the middle; undefined: none. */
  readonly suffix: string | undefined;
}

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
  const messages = messageList(body.messages, "messages");
  const logprobs = boolean(body, "logprobs") ?? false;
  const top = integer(body, "top_logprobs", 0, 20);
  if (top !== undefined && !logprobs) {
    throw invalidRequest("'top_logprobs' needs 'logprobs' set to true", "top_logprobs");
  }
  const tools = parseTools(body.tools);
  const toolChoice = parseToolChoice(body.tool_choice, tools);
  const responseFormat = parseResponseFormat(body.response_format);
  if (responseFormat !== undefined && tools.length > 0 && toolChoice !== "none") {
    throw invalidRequest(
      "'response_format' cannot be combined with 'tools' unless 'tool_choice' is \"none\"",
      "response_format",
    );
  }
  const parsed = messages.map(parseMessage);
  const generation = parseGeneration(body);
  if (generation.structured !== undefined) {
    const other = responseFormat !== undefined
      ? "response_format"
      : tools.length > 0 && toolChoice !== "none"
      ? "tools"
      : undefined;
    if (other !== undefined) {
      throw invalidRequest(
        `'structured_outputs' cannot be combined with '${other}'`,
        "structured_outputs",
      );
    }
  }
  return {
    ...generation,
    logprobs: logprobs ? top ?? 0 : undefined,
    messages: parsed,
    responseFormat,
    tools,
    toolChoice,
    parallelToolCalls: boolean(body, "parallel_tool_calls") ?? true,
    templateVariables: {
      ...reasoningEffort(body),
      ...templateVariables(body.chat_template_kwargs),
    },
    continueFinal: continueFinal(body, parsed),
    reasoningBudget: reasoningBudget(body),
    prediction: prediction(body.prediction),
  };
}

/** `prediction`: `{"type": "content", "content": <a string or text parts>}`, as its text. */
function prediction(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const field = "prediction";
  if (!isRecord(value)) {
    throw invalidRequest(
      `'${field}' must be an object {"type": "content", "content": ...}`,
      field,
      "invalid_type",
    );
  }
  if (value.type !== "content") {
    throw invalidRequest(
      `'${field}.type' must be "content", ${
        value.type === undefined ? "and is missing" : `got ${JSON.stringify(value.type)}`
      }`,
      `${field}.type`,
    );
  }
  return partsText(value.content, `${field}.content`, ["text"]);
}

/** `continue_final_message`, checked against the messages it continues. */
function continueFinal(body: Record<string, unknown>, messages: readonly ChatMessage[]): boolean {
  const field = "continue_final_message";
  if (!(boolean(body, field) ?? false)) return false;
  const last = messages.at(-1)!;
  if (last.role !== "assistant" || typeof last.content !== "string" || last.content === "") {
    throw invalidRequest(
      `'${field}' needs the final message to be an assistant's, with text to continue`,
      field,
    );
  }
  return true;
}

/** `thinking_token_budget`: a whole number of tokens, or -1 for no limit (vLLM's). */
function reasoningBudget(body: Record<string, unknown>): number | undefined {
  const budget = integer(body, "thinking_token_budget", -1, Number.MAX_SAFE_INTEGER);
  return budget === -1 ? undefined : budget;
}

/** `reasoning_effort`'s template variables (`chat_template_kwargs` wins over them). */
function reasoningEffort(body: Record<string, unknown>): Record<string, unknown> {
  const effort = body.reasoning_effort;
  if (effort === undefined || effort === null) return {};
  if (typeof effort !== "string" || !REASONING_EFFORTS.has(effort)) {
    throw invalidRequest(
      `'reasoning_effort' must be one of ${[...REASONING_EFFORTS].join(", ")}`,
      "reasoning_effort",
    );
  }
  return effortVariables(effort);
}

/** Variables the server itself gives the chat template, which a request may not set. */
const TEMPLATE_OWN = ["messages", "tools", "add_generation_prompt"];

function templateVariables(value: unknown): Readonly<Record<string, unknown>> {
  if (value === undefined || value === null) return {};
  const field = "chat_template_kwargs";
  if (!isRecord(value)) throw invalidRequest(`'${field}' must be an object`, field, "invalid_type");
  for (const key of TEMPLATE_OWN) {
    if (key in value) {
      throw invalidRequest(
        `'${field}.${key}' is set by the server (from the request's own fields)`,
        `${field}.${key}`,
      );
    }
  }
  return value;
}

function parseResponseFormat(value: unknown): ResponseFormat | undefined {
  if (value === undefined || value === null) return undefined;
  const field = "response_format";
  if (!isRecord(value)) throw invalidRequest(`'${field}' must be an object`, field, "invalid_type");
  switch (value.type) {
    case "text":
      return undefined;
    case "json_object":
      return { type: "json_object" };
    case "json_schema": {
      const spec = value.json_schema;
      if (!isRecord(spec)) {
        throw invalidRequest(
          `'${field}.json_schema' must be an object with 'name' and 'schema'`,
          `${field}.json_schema`,
          "invalid_type",
        );
      }
      if (typeof spec.name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(spec.name)) {
        throw invalidRequest(
          `'${field}.json_schema.name' must be 1 to 64 letters, digits, '_' or '-'`,
          `${field}.json_schema.name`,
        );
      }
      const schema = spec.schema ?? {};
      if (!isRecord(schema) && typeof schema !== "boolean") {
        throw invalidRequest(
          `'${field}.json_schema.schema' must be a JSON schema object`,
          `${field}.json_schema.schema`,
          "invalid_type",
        );
      }
      if (spec.strict !== undefined && spec.strict !== null && typeof spec.strict !== "boolean") {
        throw invalidRequest(
          `'${field}.json_schema.strict' must be a boolean`,
          `${field}.json_schema.strict`,
          "invalid_type",
        );
      }
      return { type: "json_schema", name: spec.name, schema, strict: spec.strict === true };
    }
    default:
      throw invalidRequest(
        `'${field}.type' must be one of text, json_object, json_schema, ${
          value.type === undefined ? "and is missing" : `got ${JSON.stringify(value.type)}`
        }`,
        `${field}.type`,
      );
  }
}

/** Most prompts one text completions request may hold (by default, for `promptList`). */
const MAX_PROMPTS = 128;

/** Validates a text completions body; unknown and unsupported fields are refused. */
export function parseCompletionRequest(body: Record<string, unknown>): CompletionRequest {
  checkFields(body, COMPLETION_FIELDS);
  const prompts = promptList(body, "prompt");
  const echo = boolean(body, "echo") ?? false;
  const suffix = body.suffix;
  if (suffix !== undefined && suffix !== null && typeof suffix !== "string") {
    throw invalidRequest("'suffix' must be a string", "suffix", "invalid_type");
  }
  if (echo && typeof suffix === "string" && suffix !== "") {
    throw invalidRequest("'echo' cannot be combined with 'suffix'", "echo");
  }
  return {
    // An echoed prompt is worth asking for with no completion: to score it.
    ...parseGeneration(body, echo ? 0 : 1),
    logprobs: integer(body, "logprobs", 0, 5),
    prompts,
    echo,
    suffix: typeof suffix === "string" && suffix !== "" ? suffix : undefined,
  };
}

/**
 * A field holding one to `most` prompts: a string, a list of strings, a list of token ids or
 * a list of lists of token ids; each non-empty, ids non-negative integers (checked against the
 * vocabulary with the model).
 */
export function promptList(
  body: Record<string, unknown>,
  field: string,
  most = MAX_PROMPTS,
): (string | number[])[] {
  const value = body[field];
  if (value === undefined || value === null) {
    throw invalidRequest(`Missing required field '${field}'`, field, "missing_required");
  }
  const kinds = "a string, a list of strings, a list of token ids or a list of lists of token ids";
  let prompts: (string | number[])[];
  if (typeof value === "string") {
    prompts = [value];
  } else if (!Array.isArray(value)) {
    throw invalidRequest(`'${field}' must be ${kinds}`, field, "invalid_type");
  } else if (value.length > 0 && value.every((p) => typeof p === "number")) {
    prompts = [value as number[]];
  } else if (value.every((p) => typeof p === "string" || Array.isArray(p))) {
    prompts = value as (string | number[])[];
  } else {
    throw invalidRequest(`'${field}' must be ${kinds}`, field, "invalid_type");
  }
  if (prompts.length === 0) throw invalidRequest(`'${field}' must not be empty`, field);
  if (prompts.length > most) {
    throw invalidRequest(
      `'${field}' holds ${prompts.length} prompts, more than ${most}`,
      field,
    );
  }
  prompts.forEach((one, i) => {
    const where = promptFieldOf(field, prompts.length, i);
    if (one.length === 0) throw invalidRequest(`'${where}' must not be empty`, where);
    if (typeof one !== "string") checkIds(one, where);
  });
  return prompts;
}

/** How errors name prompt `i` of `count` in `field`: the field itself when there is one. */
export function promptFieldOf(field: string, count: number, i: number): string {
  return count === 1 ? field : `${field}[${i}]`;
}

/** A 400 naming the first item of `ids` (in `field`) that is not a token id. */
function checkIds(ids: readonly unknown[], field: string): void {
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw invalidRequest(`'${field}[${i}]' must be a token id`, `${field}[${i}]`, "invalid_type");
    }
  });
}

function parseGeneration(
  body: Record<string, unknown>,
  leastMaxTokens = 1,
): Omit<GenerationRequest, "logprobs"> {
  const model = modelName(body);
  const n = integer(body, "n", 1, 128) ?? 1;
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
  set("repetitionPenalty", repetitionPenalty(body, "repetition_penalty"));
  set("seed", integer(body, "seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
  set("logitBias", logitBias(body.logit_bias));
  frontEndSamplers(body, sampling);

  const maxCompletion = integer(body, "max_completion_tokens", 1, Number.MAX_SAFE_INTEGER);
  const maxTokens = integer(body, "max_tokens", leastMaxTokens, Number.MAX_SAFE_INTEGER);
  return {
    model,
    stream,
    includeUsage,
    sampling,
    stop: stopList(body, "stop", 4),
    maxTokens: maxCompletion ?? maxTokens,
    n,
    stopTokenIds: tokenIds(body, "stop_token_ids"),
    ignoreEos: boolean(body, "ignore_eos") ?? false,
    minTokens: integer(body, "min_tokens", 0, Number.MAX_SAFE_INTEGER) ?? 0,
    structured: structuredOrGrammar(body),
  };
}

/** `structured_outputs`, or llama.cpp's `grammar` (not both). */
function structuredOrGrammar(body: Record<string, unknown>): StructuredOutput | undefined {
  const structured = structuredOutput(body.structured_outputs);
  const grammar = body.grammar;
  if (grammar === undefined || grammar === null) return structured;
  if (typeof grammar !== "string") {
    throw invalidRequest("'grammar' must be a string (GBNF)", "grammar", "invalid_type");
  }
  if (structured !== undefined) {
    throw invalidRequest("'grammar' cannot be combined with 'structured_outputs'", "grammar");
  }
  return { kind: "grammar", grammar, field: "grammar" };
}

/** `structured_outputs`: exactly one of `choice`, `regex`, `json`, `grammar`, `json_object`. */
function structuredOutput(value: unknown): StructuredOutput | undefined {
  if (value === undefined || value === null) return undefined;
  const field = "structured_outputs";
  if (!isRecord(value)) throw invalidRequest(`'${field}' must be an object`, field, "invalid_type");
  const kinds = ["choice", "regex", "json", "grammar", "json_object"];
  for (const key of Object.keys(value)) {
    if (!kinds.includes(key) && value[key] !== null && value[key] !== undefined) {
      throw invalidRequest(
        `'${field}.${key}' is not supported: only ${kinds.join(", ")}`,
        `${field}.${key}`,
        "unsupported_parameter",
      );
    }
  }
  const given = kinds.filter((k) => value[k] !== undefined && value[k] !== null);
  if (given.length !== 1) {
    throw invalidRequest(
      `'${field}' must hold exactly one of ${kinds.join(", ")}, it holds ${given.length}`,
      field,
    );
  }
  const kind = given[0]!;
  const item = value[kind];
  const where = `${field}.${kind}`;
  switch (kind) {
    case "choice":
      if (
        !Array.isArray(item) || item.length === 0 || !item.every((c) => typeof c === "string")
      ) {
        throw invalidRequest(
          `'${where}' must be a non-empty list of strings`,
          where,
          "invalid_type",
        );
      }
      return { kind, choices: item as string[] };
    case "regex":
    case "grammar":
      if (typeof item !== "string") {
        throw invalidRequest(`'${where}' must be a string`, where, "invalid_type");
      }
      return kind === "regex" ? { kind, pattern: item } : { kind, grammar: item, field: where };
    case "json": {
      // vLLM takes the schema as an object or as its JSON text.
      let schema = item;
      if (typeof item === "string") {
        try {
          schema = JSON.parse(item);
        } catch (e) {
          throw invalidRequest(
            `'${where}' is not valid JSON: ${(e as Error).message}`,
            where,
            "invalid_value",
          );
        }
      }
      if (!isRecord(schema) && typeof schema !== "boolean") {
        throw invalidRequest(`'${where}' must be a JSON schema object`, where, "invalid_type");
      }
      return { kind, schema };
    }
    default:
      if (item !== true) throw invalidRequest(`'${where}' must be true`, where, "invalid_value");
      return { kind: "json_object" };
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A list of token ids (checked against the vocabulary with the model, later). */
/** `body[field]`: a list of token ids (checked against a vocabulary later); [] when absent. */
export function tokenIds(body: Record<string, unknown>, field: string): number[] {
  const value = body[field];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw invalidRequest(`'${field}' must be a list of token ids`, field, "invalid_type");
  }
  checkIds(value, field);
  return value as number[];
}

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

/**
 * `body[field]`: up to `most` stop strings (empty ones dropped), as a list or, unless
 * `listOnly`, one string.
 */
export function stopList(
  body: Record<string, unknown>,
  field: string,
  most: number,
  listOnly = false,
): string[] {
  const value = body[field];
  if (value === undefined || value === null) return [];
  if (typeof value === "string" && !listOnly) return value === "" ? [] : [value];
  if (!Array.isArray(value) || !value.every((s) => typeof s === "string")) {
    const kinds = listOnly ? "an array of strings" : "a string or an array of strings";
    throw invalidRequest(`'${field}' must be ${kinds}`, field, "invalid_type");
  }
  if (value.length > most) {
    throw invalidRequest(`'${field}' may hold at most ${most} strings, got ${value.length}`, field);
  }
  return value.filter((s) => s !== "");
}

/** `body[field]`: a repetition penalty, above 0 and at most 10; undefined when absent. */
export function repetitionPenalty(
  body: Record<string, unknown>,
  field: string,
): number | undefined {
  const penalty = number(body, field, 0, 10);
  if (penalty === 0) throw invalidRequest(`'${field}' must be greater than 0`, field);
  return penalty;
}

const MAX_BREAKERS = 64;

/**
 * DRY from llama.cpp's `dry_*` fields, with its defaults (base 1.75, allowed length 2, the
 * whole history, breakers newline, colon, quote and star); undefined while off (a multiplier
 * or `dry_penalty_last_n` of 0).
 */
export function dry(body: Record<string, unknown>): DryOptions | undefined {
  const multiplier = number(body, "dry_multiplier", 0, 1e6) ?? 0;
  const lastN = integer(body, "dry_penalty_last_n", -1, Number.MAX_SAFE_INTEGER) ?? -1;
  const base = number(body, "dry_base", 1, 1e6) ?? 1.75;
  const allowedLength = integer(body, "dry_allowed_length", 0, Number.MAX_SAFE_INTEGER) ?? 2;
  const breakers = body.dry_sequence_breakers ?? DRY_BREAKERS;
  if (
    !Array.isArray(breakers) || breakers.length === 0 || breakers.length > MAX_BREAKERS ||
    !breakers.every((b) => typeof b === "string" && b !== "")
  ) {
    throw invalidRequest(
      `'dry_sequence_breakers' must be a list of 1 to ${MAX_BREAKERS} non-empty strings`,
      "dry_sequence_breakers",
      "invalid_type",
    );
  }
  if (multiplier === 0 || lastN === 0) return undefined;
  return {
    multiplier,
    base,
    allowedLength,
    lastN: lastN === -1 ? Infinity : lastN,
    sequenceBreakers: breakers as string[],
  };
}

/**
 * The samplers of chat front ends that llama.cpp's fields name (`typical_p`, `mirostat*`,
 * `xtc_*`, `top_n_sigma`, `dry_*`), into `sampling`.
 */
export function frontEndSamplers(
  body: Record<string, unknown>,
  sampling: { -readonly [K in keyof SamplingOptions]: SamplingOptions[K] },
): void {
  const set = <K extends keyof SamplingOptions>(key: K, value: SamplingOptions[K] | undefined) => {
    if (value !== undefined) sampling[key] = value;
  };
  set("topNSigma", number(body, "top_n_sigma", -1e6, 1e6));
  set("typicalP", number(body, "typical_p", 0, 1));
  set("mirostat", mirostat(body));
  set("xtcProbability", number(body, "xtc_probability", 0, 1));
  set("xtcThreshold", number(body, "xtc_threshold", 0, 1));
  set("dry", dry(body));
}

/**
 * Mirostat from llama.cpp's and Ollama's fields `<prefix>mirostat` (0 off, 1 or 2),
 * `mirostat_tau` (default 5) and `mirostat_eta` (default 0.1); undefined while off.
 */
export function mirostat(
  body: Record<string, unknown>,
  prefix = "",
): MirostatOptions | undefined {
  const version = integer(body, `${prefix}mirostat`, 0, 2) ?? 0;
  const tau = number(body, `${prefix}mirostat_tau`, 0, 100) ?? 5;
  const eta = number(body, `${prefix}mirostat_eta`, 0, 10) ?? 0.1;
  return version === 0 ? undefined : { version: version as 1 | 2, tau, eta };
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
