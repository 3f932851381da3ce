/**
 * Reading the bodies of llama.cpp's own `POST /completion` and `POST /infill` (llama-server's
 * native API, which code-completion plugins such as llama.vim and llama.vscode speak): every
 * field llama.cpp lists honoured, accepted with no effect, or refused with a 400 naming it;
 * fields it does not list are ignored, as it ignores them.
 */
import type { SamplingOptions } from "../src/engine/sampler.ts";
import type { ProjectFile } from "../src/engine/fill_in_middle.ts";
import { invalidRequest } from "./errors.ts";
import {
  checkFields,
  type FieldTable,
  LLAMA_CPP_COMPLETION_FIELDS,
  LLAMA_CPP_INFILL_FIELDS,
} from "./fields.ts";
import { isRecord } from "./messages.ts";
import {
  boolean,
  frontEndSamplers,
  integer,
  modelName,
  number,
  repetitionPenalty,
  type ResponseFormat,
  stopList,
  type StructuredOutput,
} from "./validate.ts";

/** A prompt as llama.cpp takes one: texts and token ids in any order. */
export type PromptParts = readonly (string | number)[];

/** What `/completion` and `/infill` share: everything but the prompt. */
export interface LlamaCppRequest {
  readonly model: string | undefined;
  /** Default false. */
  readonly stream: boolean;
  readonly sampling: SamplingOptions;
  readonly stop: string[];
  /** `n_predict`; undefined: up to the context's end. */
  readonly maxTokens: number | undefined;
  /** `n_probs` when above 0. */
  readonly logprobs: number | undefined;
  readonly ignoreEos: boolean;
  /** `n_indent`; 0: off. */
  readonly minIndent: number;
  /** `t_max_predict_ms` when above 0. */
  readonly timeLimitMs: number | undefined;
  readonly returnTokens: boolean;
  /** `response_fields`; undefined: every field. */
  readonly responseFields: readonly string[] | undefined;
  /** `grammar`. */
  readonly structured: StructuredOutput | undefined;
  /** `json_schema`. */
  readonly responseFormat: ResponseFormat | undefined;
  /** `logit_bias` entries naming texts: each of a text's tokens takes its bias. */
  readonly textBias: readonly (readonly [string, number])[];
}

/** A validated `POST /completion` body. */
export interface LlamaCppCompletion extends LlamaCppRequest {
  /** One or more prompts, each answered. */
  readonly prompts: readonly PromptParts[];
  /** The prompt was a list of prompts: the answer is an array. */
  readonly many: boolean;
}

/** A validated `POST /infill` body. */
export interface LlamaCppInfill extends LlamaCppRequest {
  readonly prefix: PromptParts;
  readonly suffix: PromptParts;
  /** Text right before the cursor. */
  readonly prompt: PromptParts;
  readonly files: readonly ProjectFile[];
}

/** llama.cpp's sampling defaults (its repetition penalty is off, as the engine's). */
export const LLAMA_CPP_DEFAULTS: SamplingOptions = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
};

const MAX_STOP = 32;
const MAX_PROMPTS = 64;
const MAX_FILES = 1024;

/** Validates a `/completion` body. */
export function parseLlamaCppCompletion(body: Record<string, unknown>): LlamaCppCompletion {
  const request = parseGeneration(body, LLAMA_CPP_COMPLETION_FIELDS);
  const value = body.prompt;
  if (value === undefined || value === null) {
    throw invalidRequest("Missing required field 'prompt'", "prompt", "missing_required");
  }
  // A list holding a token id is one prompt; a list of texts and lists is one prompt each.
  const many = Array.isArray(value) && value.length > 0 &&
    value.every((p) => typeof p === "string" || Array.isArray(p));
  const prompts = many
    ? (value as unknown[]).map((p, i) => promptParts(p, `prompt[${i}]`))
    : [promptParts(value, "prompt")];
  if (prompts.length > MAX_PROMPTS) {
    throw invalidRequest(
      `'prompt' holds ${prompts.length} prompts, more than ${MAX_PROMPTS}`,
      "prompt",
    );
  }
  prompts.forEach((parts, i) => {
    if (parts.length === 0 || parts.every((p) => p === "")) {
      const where = many ? `prompt[${i}]` : "prompt";
      throw invalidRequest(`'${where}' must not be empty`, where);
    }
  });
  return { ...request, prompts, many };
}

/** Validates an `/infill` body. */
export function parseLlamaCppInfill(body: Record<string, unknown>): LlamaCppInfill {
  const request = parseGeneration(body, LLAMA_CPP_INFILL_FIELDS);
  const optional = (field: string) =>
    body[field] === undefined || body[field] === null ? [] : promptParts(body[field], field);
  return {
    ...request,
    prefix: optional("input_prefix"),
    suffix: optional("input_suffix"),
    prompt: optional("prompt"),
    files: projectFiles(body.input_extra),
  };
}

/** A text, a token id, or a list of both, as parts. */
function promptParts(value: unknown, field: string): PromptParts {
  const parts = Array.isArray(value) ? value : [value];
  parts.forEach((part, i) => {
    const where = Array.isArray(value) ? `${field}[${i}]` : field;
    if (typeof part === "string") return;
    if (typeof part !== "number" || !Number.isSafeInteger(part) || part < 0) {
      throw invalidRequest(
        `'${where}' must be a text or a token id (a non-negative integer)`,
        where,
        "invalid_type",
      );
    }
  });
  return parts as PromptParts;
}

/** `input_extra`: `[{filename, text}]`. */
function projectFiles(value: unknown): ProjectFile[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw invalidRequest("'input_extra' must be an array", "input_extra", "invalid_type");
  }
  if (value.length > MAX_FILES) {
    throw invalidRequest(`'input_extra' holds more than ${MAX_FILES} files`, "input_extra");
  }
  return value.map((file, i) => {
    const where = `input_extra[${i}]`;
    const text = isRecord(file) ? file.text : undefined;
    const filename = isRecord(file) ? file.filename ?? "tmp" : undefined;
    if (typeof text !== "string" || typeof filename !== "string") {
      throw invalidRequest(
        `'${where}' must be {"filename": string, "text": string}`,
        where,
        "invalid_type",
      );
    }
    return { filename, text };
  });
}

function parseGeneration(body: Record<string, unknown>, fields: FieldTable): LlamaCppRequest {
  checkFields(body, fields, "ignored");
  const predict = integer(body, "n_predict", -1, Number.MAX_SAFE_INTEGER) ??
    integer(body, "max_tokens", -1, Number.MAX_SAFE_INTEGER);
  const probs = integer(body, "n_probs", 0, 20) ?? 0;
  const limit = integer(body, "t_max_predict_ms", -1, Number.MAX_SAFE_INTEGER) ?? 0;
  const grammar = body.grammar;
  if (grammar !== undefined && grammar !== null && typeof grammar !== "string") {
    throw invalidRequest("'grammar' must be a string (GBNF)", "grammar", "invalid_type");
  }
  const schema = body.json_schema;
  if (schema !== undefined && schema !== null && !isRecord(schema)) {
    throw invalidRequest("'json_schema' must be an object", "json_schema", "invalid_type");
  }
  const bias = biasEntries(body.logit_bias);
  // As llama.cpp: a grammar, when given, wins over a schema.
  const structured: StructuredOutput | undefined = typeof grammar === "string" && grammar !== ""
    ? { kind: "grammar", grammar, field: "grammar" }
    : undefined;
  return {
    model: modelName(body),
    stream: boolean(body, "stream") ?? false,
    sampling: sampling(body, bias),
    stop: stopList(body, "stop", MAX_STOP, true),
    maxTokens: predict === undefined || predict < 0 ? undefined : predict,
    logprobs: probs > 0 ? probs : undefined,
    ignoreEos: boolean(body, "ignore_eos") ?? false,
    minIndent: integer(body, "n_indent", 0, Number.MAX_SAFE_INTEGER) ?? 0,
    timeLimitMs: limit > 0 ? limit : undefined,
    returnTokens: boolean(body, "return_tokens") ?? false,
    responseFields: responseFields(body.response_fields),
    structured,
    responseFormat: structured === undefined && isRecord(schema)
      ? { type: "json_schema", name: "json_schema", schema, strict: true }
      : undefined,
    textBias: bias.filter((entry): entry is [string, number] => typeof entry[0] === "string"),
  };
}

/** The samplers llama.cpp's `samplers` may name, by the letters its string form uses. */
const SAMPLER_LETTERS: Readonly<Record<string, string>> = {
  d: "dry",
  k: "top_k",
  y: "typ_p",
  p: "top_p",
  s: "top_n_sigma",
  m: "min_p",
  t: "temperature",
  x: "xtc",
  i: "infill",
  e: "penalties",
};
const SAMPLER_NAMES = new Set([...Object.values(SAMPLER_LETTERS), "typical_p", "nucleus"]);

/**
 * Sampling with llama.cpp's defaults, without the samplers `samplers` leaves out, and the
 * token ids of `bias` (texts are the caller's: their tokens need the model).
 */
function sampling(
  body: Record<string, unknown>,
  bias: readonly (readonly [number | string, number])[],
): SamplingOptions {
  const options: { -readonly [K in keyof SamplingOptions]: SamplingOptions[K] } = {
    ...LLAMA_CPP_DEFAULTS,
  };
  const set = <K extends keyof SamplingOptions>(key: K, value: SamplingOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  const temperature = number(body, "temperature", -1e6, 1e6);
  set("temperature", temperature === undefined ? undefined : Math.max(0, temperature));
  set("topK", integer(body, "top_k", -1, 1 << 30));
  if ((options.topK ?? 0) < 0) options.topK = 0;
  set("topP", number(body, "top_p", 0, 1));
  set("minP", number(body, "min_p", 0, 1));
  frontEndSamplers(body, options);
  set("presencePenalty", number(body, "presence_penalty", -2, 2));
  set("frequencyPenalty", number(body, "frequency_penalty", -2, 2));
  set("repetitionPenalty", repetitionPenalty(body, "repeat_penalty"));
  const seed = integer(body, "seed", -1, 0xffffffff);
  if (seed !== undefined && seed !== -1 && seed !== 0xffffffff) options.seed = seed;
  const ids = bias.filter((entry) => typeof entry[0] === "number");
  if (ids.length > 0) options.logitBias = new Map(ids as [number, number][]);
  const named = samplerNames(body.samplers);
  if (named !== undefined) {
    const has = (name: string) => named.has(name);
    if (!has("top_k")) options.topK = 0;
    if (!has("top_p") && !has("nucleus")) options.topP = 1;
    if (!has("min_p")) options.minP = 0;
    if (!has("xtc")) delete options.xtcProbability;
    if (!has("top_n_sigma")) delete options.topNSigma;
    if (!has("typ_p") && !has("typical_p")) delete options.typicalP;
    if (!has("dry")) delete options.dry;
    if (!has("temperature")) options.temperature = 1;
    if (!has("penalties")) {
      delete options.repetitionPenalty;
      delete options.presencePenalty;
      delete options.frequencyPenalty;
    }
  }
  return options;
}

/** `samplers`: a list of names or a string of letters; undefined when absent. */
function samplerNames(value: unknown): Set<string> | undefined {
  if (value === undefined || value === null) return undefined;
  const names = typeof value === "string"
    ? [...value].map((letter) => SAMPLER_LETTERS[letter] ?? letter)
    : Array.isArray(value) && value.every((name) => typeof name === "string")
    ? value as string[]
    : undefined;
  if (names === undefined) {
    throw invalidRequest(
      "'samplers' must be an array of sampler names or a string of their letters",
      "samplers",
      "invalid_type",
    );
  }
  for (const name of names) {
    if (!SAMPLER_NAMES.has(name)) {
      throw invalidRequest(
        `'samplers' names an unknown sampler '${name}' (known: ${
          [...new Set(Object.values(SAMPLER_LETTERS))].join(", ")
        })`,
        "samplers",
      );
    }
  }
  return new Set(names);
}

/**
 * llama.cpp's `logit_bias`, `[[id or text, bias or false], ...]` or `{id: bias}`, checked; a
 * bias of false is -Infinity.
 */
function biasEntries(value: unknown): [number | string, number][] {
  if (value === undefined || value === null) return [];
  const pairs: [unknown, unknown][] = Array.isArray(value)
    ? value.map((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw invalidRequest(
          `'logit_bias[${i}]' must be [token id or text, bias]`,
          `logit_bias[${i}]`,
          "invalid_type",
        );
      }
      return [pair[0], pair[1]];
    })
    : isRecord(value)
    ? Object.entries(value).map(([key, bias]) => [/^\d+$/.test(key) ? Number(key) : key, bias])
    : (() => {
      throw invalidRequest(
        "'logit_bias' must be an array of [token id or text, bias] or an object",
        "logit_bias",
        "invalid_type",
      );
    })();
  return pairs.map(([key, bias]) => {
    const where = `logit_bias.${String(key)}`;
    if (!(typeof key === "string" || (Number.isSafeInteger(key) && (key as number) >= 0))) {
      throw invalidRequest(`'${where}' must name a token id or a text`, "logit_bias");
    }
    if (bias === false) return [key as number | string, -Infinity];
    if (typeof bias !== "number" || !Number.isFinite(bias) || bias < -100 || bias > 100) {
      throw invalidRequest(`'${where}' must be a number between -100 and 100, or false`, where);
    }
    return [key as number | string, bias];
  });
}

/** `response_fields`: the result's fields to send, paths with `/`. */
function responseFields(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((field) => typeof field === "string")) {
    throw invalidRequest(
      "'response_fields' must be an array of strings",
      "response_fields",
      "invalid_type",
    );
  }
  return value;
}
