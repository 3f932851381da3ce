/**
 * llama.cpp's own API (llama-server's native endpoints), for the clients written against it:
 * `POST /completion` and `POST /infill` (code completion in editors: llama.vim, llama.vscode),
 * `GET /props`, `GET /slots` and `POST /apply-template`.
 */
import { type Context, Hono } from "hono";
import denoJson from "../deno.json" with { type: "json" };
import { infillPrompt, type ProjectFile } from "../src/engine/fill_in_middle.ts";
import { CHARS_PER_TOKEN, type InferenceService } from "../src/engine/service.ts";
import { ApiError } from "./errors.ts";
import { prepareJob, promptTokens, requireFimTokens, respondStream, respondWhole } from "./job.ts";
import {
  LLAMA_CPP_DEFAULTS,
  type LlamaCppRequest,
  parseLlamaCppCompletion,
  parseLlamaCppInfill,
  type PromptParts,
} from "./llama_cpp_request.ts";
import { llamaCppWriter } from "./llama_cpp_writer.ts";
import { renderMessages } from "./messages.ts";
import type { ServingState } from "./state.ts";
import { outputPlan } from "./structured.ts";
import { parseChatRequest, readJsonObject } from "./validate.ts";

/** llama-server's logical batch, which bounds an infill's prefix and suffix. */
const INFILL_WINDOW = 2048;

/** `/completion` (and `/completions`), `/infill`, `/props`, `/slots` and `/apply-template`. */
export function llamaCppRoute(state: ServingState): Hono {
  const app = new Hono();

  const complete = async (c: Context) => {
    const arrived = performance.now();
    const request = parseLlamaCppCompletion(await readJsonObject(c.req.raw));
    const service = state.requireModel(request.model);
    const prompts = request.prompts.map((parts, i) =>
      partsTokens(service, parts, request.many ? `prompt[${i}]` : "prompt")
    );
    return await respond(c, state, service, request, {
      arrived,
      prompts,
      many: request.many,
      promptField: "prompt",
    });
  };
  app.post("/completion", complete);
  app.post("/completions", complete);

  app.post("/infill", async (c) => {
    const arrived = performance.now();
    const request = parseLlamaCppInfill(await readJsonObject(c.req.raw));
    const service = state.requireModel(request.model);
    const tokens = requireFimTokens(service, "input_suffix");
    const window = Math.min(INFILL_WINDOW, Math.floor(service.contextLength / 2));
    const quarter = Math.floor(window / 4);
    const prompt = partsTokens(service, request.prompt, "prompt", false);
    const room = service.contextLength - window - 2 * (request.maxTokens ?? 0) - 4;
    const ids = infillPrompt(service.tokenizer, tokens, {
      prefix: boundedTokens(service, request.prefix, "input_prefix", 3 * quarter, "end"),
      suffix: boundedTokens(service, request.suffix, "input_suffix", quarter, "start"),
      prompt,
      files: lastFiles(request.files, room),
      window,
      room,
      suffixFirst: state.config.spmInfill,
    });
    return await respond(c, state, service, request, {
      arrived,
      prompts: [ids],
      many: false,
      promptField: "input_prefix",
    });
  });

  app.get("/props", (c) => {
    const service = state.requireService();
    return c.json({
      default_generation_settings: {
        n_ctx: service.contextLength,
        params: {
          n_predict: -1,
          temperature: LLAMA_CPP_DEFAULTS.temperature,
          top_k: LLAMA_CPP_DEFAULTS.topK,
          top_p: LLAMA_CPP_DEFAULTS.topP,
          min_p: LLAMA_CPP_DEFAULTS.minP,
          repeat_penalty: 1,
          seed: -1,
          stop: [],
          n_probs: 0,
          samplers: ["penalties", "top_k", "top_p", "min_p", "temperature"],
        },
      },
      total_slots: state.config.maxBatch,
      model_alias: service.modelId,
      model_path: service.modelId,
      chat_template: service.chatTemplate,
      modalities: { vision: false, audio: false },
      build_info: `rill ${denoJson.version}`,
    });
  });

  // A slot is a place in the batch (`--max-batch`); each running sequence holds one.
  app.get("/slots", (c) => {
    const service = state.requireService();
    const running = new Map(service.slots.map((s) => [s.slot, s]));
    const count = Math.max(state.config.maxBatch, ...[...running.keys()].map((slot) => slot + 1));
    const failOnNoSlot = c.req.query("fail_on_no_slot");
    // As llama.cpp: a 503 when a new request would have to wait for a place.
    if (failOnNoSlot && failOnNoSlot !== "0" && state.queue.running >= state.config.maxBatch) {
      throw new ApiError(503, "no slot available", { type: "unavailable_error" });
    }
    return c.json(Array.from({ length: count }, (_, id) => {
      const held = running.get(id);
      return {
        id,
        id_task: held?.id ?? -1,
        n_ctx: service.contextLength,
        speculative: false,
        is_processing: held !== undefined,
        n_past: held?.cachedPositions ?? 0,
        n_prompt_tokens: held?.promptTokens ?? 0,
        next_token: {
          has_next_token: held !== undefined && held.generated < held.maxTokens,
          n_remain: held === undefined ? -1 : held.maxTokens - held.generated,
          n_decoded: held?.generated ?? 0,
        },
      };
    }));
  });

  app.post("/apply-template", async (c) => {
    const { messages, templateVariables, continueFinal } = parseChatRequest(
      await readJsonObject(c.req.raw),
    );
    const service = state.requireService();
    return c.json({
      prompt: renderMessages(service, messages, "messages", [], {
        variables: templateVariables,
        continueFinal,
      }),
    });
  });
  return app;
}

/** A request's prompts as ids, and how its answer is written. */
interface Answering {
  readonly arrived: number;
  readonly prompts: readonly (readonly number[])[];
  readonly many: boolean;
  /** The request field the prompts came from, named in context errors. */
  readonly promptField: string;
}

/** Queues a `/completion` or `/infill` job and answers, streamed or whole. */
async function respond(
  c: Context,
  state: ServingState,
  service: InferenceService,
  request: LlamaCppRequest,
  { arrived, prompts, many, promptField }: Answering,
): Promise<Response> {
  const output = outputPlan(state, service, {
    structured: request.structured,
    responseFormat: request.responseFormat,
    formatField: "json_schema",
  });
  const sampling = withTextBias(service, request);
  // As llama.cpp: a token cap past the context's end is cut to it.
  const longest = Math.max(...prompts.map((ids) => ids.length));
  const maxTokens = request.maxTokens === undefined
    ? undefined
    : Math.max(0, Math.min(request.maxTokens, service.contextLength - longest));
  const job = prepareJob(state, {
    service,
    request: {
      sampling,
      stop: request.stop,
      maxTokens,
      logprobs: request.logprobs,
      ignoreEos: request.ignoreEos,
      minIndent: request.minIndent,
      timeLimitMs: request.timeLimitMs,
    },
    prompts,
    promptField,
    maxTokensField: "n_predict",
    outputs: prompts.map(() => output),
    id: `llama-cpp-${crypto.randomUUID()}`,
    arrived,
    clientSignal: c.req.raw.signal,
  });
  const model = request.model ?? service.modelId;
  const writer = llamaCppWriter(service, { model, arrived, prompts, many, request });
  return request.stream ? respondStream(c, job, writer) : await respondWhole(c, job, writer);
}

/** The request's sampling, with each token of `logit_bias`'s texts biased. */
function withTextBias(service: InferenceService, request: LlamaCppRequest) {
  if (request.textBias.length === 0) return request.sampling;
  const bias = new Map(request.sampling.logitBias ?? []);
  for (const [text, value] of request.textBias) {
    for (const id of service.tokenizer.encode(text, { addBos: false })) bias.set(id, value);
  }
  return { ...request.sampling, logitBias: bias };
}

/**
 * The ids of a prompt of texts and ids (named `field` in errors), BOS first when it starts with
 * a text and `bos`; refused before tokenizing when it cannot fit the context.
 */
function partsTokens(
  service: InferenceService,
  parts: PromptParts,
  field: string,
  bos = true,
): number[] {
  const least = parts.reduce<number>(
    (n, part) => n + (typeof part === "number" ? 1 : service.leastTokens(part)),
    0,
  );
  if (least > service.contextLength) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${service.contextLength} tokens, but '${field}' has at least ${least} tokens`,
      { param: field, code: "context_length_exceeded" },
    );
  }
  const ids = parts.flatMap((part, i) =>
    typeof part === "number"
      ? [part]
      : i === 0 && bos
      ? service.encodePrompt(part)
      : service.tokenizer.encode(part, { addBos: false })
  );
  return promptTokens(service, ids, field);
}

/**
 * The ids of infill's prefix (its last `most` tokens, `from` "end") or suffix (its first, from
 * "start"); of a long text only as many characters are read as the kept tokens can stand for.
 */
function boundedTokens(
  service: InferenceService,
  parts: PromptParts,
  field: string,
  most: number,
  from: "start" | "end",
): number[] {
  let chars = most * CHARS_PER_TOKEN;
  const ordered = from === "end" ? [...parts].reverse() : parts;
  const kept: (string | number)[] = [];
  for (const part of ordered) {
    if (chars <= 0) break;
    if (typeof part === "number") {
      kept.push(part);
      chars -= CHARS_PER_TOKEN;
      continue;
    }
    kept.push(
      part.length <= chars
        ? part
        : from === "end"
        ? part.slice(part.length - chars)
        : part.slice(0, chars),
    );
    chars -= part.length;
  }
  if (from === "end") kept.reverse();
  const ids = promptTokens(
    service,
    kept.flatMap((part) =>
      typeof part === "number" ? [part] : service.tokenizer.encode(part, { addBos: false })
    ),
    field,
  );
  return from === "end" ? ids.slice(Math.max(0, ids.length - most)) : ids.slice(0, most);
}

/** The last of the project's files, as much of them as `room` tokens can stand for. */
function lastFiles(files: readonly ProjectFile[], room: number): ProjectFile[] {
  let chars = Math.max(0, room) * CHARS_PER_TOKEN;
  const kept: ProjectFile[] = [];
  for (let i = files.length - 1; i >= 0 && chars > 0; i--) {
    const { filename, text } = files[i]!;
    kept.unshift({ filename, text: text.length <= chars ? text : text.slice(text.length - chars) });
    chars -= text.length + filename.length;
  }
  return kept;
}
