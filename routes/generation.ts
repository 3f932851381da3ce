import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { FinishReason, InferenceService } from "../src/engine/service.ts";
import { QueueFullError, type QueueTicket } from "../src/scheduler/queue.ts";
import { ApiError, toApiError } from "./errors.ts";
import type { ServingState } from "./state.ts";
import { type GenerationRequest, readJsonObject } from "./validate.ts";

/** OpenAI `usage`. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/**
 * What one endpoint puts in its choices; the envelope around them (`id`, `object`, `created`,
 * `model`, `usage`) and each choice's `index`, `logprobs` and `finish_reason` are common.
 */
export interface ResponseShape {
  /** `object` of a stream chunk. */
  readonly chunkObject: string;
  /** `object` of the non-streaming answer. */
  readonly wholeObject: string;
  /** The choice content of the first stream chunk (chat: the role delta), or null for none. */
  readonly opening: object | null;
  /** The choice content of a stream chunk carrying generated text. */
  text(text: string): object;
  /** The choice content of the stream chunk carrying `finish_reason`. */
  readonly finish: object;
  /** The choice content of the non-streaming answer. */
  whole(text: string): object;
}

/** What sets one generation endpoint apart from another. */
export interface GenerationEndpoint<R extends GenerationRequest> {
  /** Validates the JSON body. */
  parse(body: Record<string, unknown>): R;
  /** The prompt text the request asks to continue. */
  prompt(service: InferenceService, request: R): string;
  /** The request field the prompt came from, named in context errors. */
  readonly promptField: string;
  /** The response id prefix (`chatcmpl`, `cmpl`). */
  readonly idPrefix: string;
  readonly shape: ResponseShape;
}

/** `POST path`: one OpenAI generation endpoint, streamed over SSE or whole. */
export function generationRoute<R extends GenerationRequest>(
  state: ServingState,
  path: string,
  endpoint: GenerationEndpoint<R>,
): Hono {
  const app = new Hono();
  app.post(path, async (c) => {
    const arrived = performance.now();
    const request = endpoint.parse(await readJsonObject(c.req.raw));
    const service = state.requireService();
    const promptIds = service.encodePrompt(endpoint.prompt(service, request));
    const id = responseId(endpoint.idPrefix);
    const job = prepareJob(state, {
      service,
      request,
      promptIds,
      promptField: endpoint.promptField,
      responses: responses(endpoint.shape, id, service.modelId, request.includeUsage),
      id,
      arrived,
      clientSignal: c.req.raw.signal,
    });
    return await respond(c, job);
  });
  return app;
}

interface JobSpec {
  readonly service: InferenceService;
  readonly request: GenerationRequest;
  readonly promptIds: number[];
  /** The request field the prompt came from, named in context errors. */
  readonly promptField: string;
  readonly responses: Responses;
  /** `performance.now()` when the request arrived. */
  readonly arrived: number;
  /** The response id, for the log. */
  readonly id: string;
  /** Aborts when the client goes away. */
  readonly clientSignal: AbortSignal;
}

/** A job checked against the context and admitted to the queue. */
interface PreparedJob extends JobSpec {
  readonly state: ServingState;
  readonly maxTokens: number;
  readonly ticket: QueueTicket;
  readonly controller: AbortController;
}

/**
 * Checks the prompt against the context, the logit bias against the vocabulary, and
 * takes a queue place; every failure here is an HTTP error before any byte is sent.
 */
function prepareJob(state: ServingState, spec: JobSpec): PreparedJob {
  const { service, request, promptIds, promptField, clientSignal } = spec;
  const context = service.contextLength;
  if (promptIds.length >= context) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${context} tokens, but the prompt has ${promptIds.length} tokens`,
      { param: promptField, code: "context_length_exceeded" },
    );
  }
  const cap = state.config.maxTokensCap;
  if (
    request.maxTokens !== undefined && promptIds.length + Math.min(request.maxTokens, cap) > context
  ) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${context} tokens, but ${
        promptIds.length + request.maxTokens
      } were requested (${promptIds.length} in the prompt, ${request.maxTokens} for the completion)`,
      { param: "max_tokens", code: "context_length_exceeded" },
    );
  }
  const vocab = service.tokenizer.vocabSize;
  for (const id of request.sampling.logitBias?.keys() ?? []) {
    if (id >= vocab) {
      throw new ApiError(400, `'logit_bias' token id ${id} is outside the vocabulary (${vocab})`, {
        param: "logit_bias",
        code: "invalid_value",
      });
    }
  }
  const maxTokens = Math.min(request.maxTokens ?? cap, cap, context - promptIds.length);
  const controller = new AbortController();
  const onClientAbort = () =>
    controller.abort(new DOMException("Client disconnected", "AbortError"));
  if (clientSignal.aborted) onClientAbort();
  else clientSignal.addEventListener("abort", onClientAbort, { once: true });
  controller.signal.addEventListener("abort", () => {
    clientSignal.removeEventListener("abort", onClientAbort);
  });
  let ticket: QueueTicket;
  try {
    ticket = state.admit(controller);
  } catch (error) {
    clientSignal.removeEventListener("abort", onClientAbort);
    if (error instanceof QueueFullError) {
      throw new ApiError(429, `${error.message}; retry after ${error.retryAfterSeconds} s`, {
        code: "rate_limit_exceeded",
        headers: { "Retry-After": String(error.retryAfterSeconds) },
      });
    }
    throw error;
  }
  return { ...spec, state, maxTokens, ticket, controller };
}

/** Runs a prepared job: a server-sent event stream when the request asked for one, else JSON. */
function respond(c: Context, job: PreparedJob): Response | Promise<Response> {
  return job.request.stream ? respondStream(c, job) : respondWhole(c, job);
}

async function respondWhole(c: Context, job: PreparedJob): Promise<Response> {
  const { state, responses } = job;
  const { signal } = job.controller;
  try {
    await job.ticket.ready;
    let text = "";
    const timer = new GenerationTimer(job);
    for await (const event of generation(job, timer)) {
      if (event.type === "text") {
        text += event.text;
      } else {
        timer.done(event);
        return c.json(responses.whole(text, event.finishReason, usageOf(event)));
      }
    }
    throw new Error("Generation ended without a result");
  } catch (error) {
    const ended = endedByServer(signal);
    if (ended) {
      state.log(`rill: ${job.id} ended: ${ended.message}`);
      throw ended;
    }
    if (signal.aborted) {
      state.metrics.cancellation();
      state.log(`rill: ${job.id} cancelled by the client`);
      return new ApiError(499, "Client closed the request", { code: "cancelled" }).toResponse();
    }
    throw error;
  } finally {
    job.ticket.release();
    job.controller.abort();
  }
}

function respondStream(c: Context, job: PreparedJob): Response {
  const { state, responses, request, controller } = job;
  const { signal } = controller;
  return streamSSE(c, async (stream) => {
    stream.onAbort(() => controller.abort(new DOMException("Client disconnected", "AbortError")));
    let lastWrite = Date.now();
    const send = async (frame: string) => {
      lastWrite = Date.now();
      if (!stream.aborted) await stream.write(frame);
    };
    const event = (payload: object) => send(`data: ${JSON.stringify(payload)}\n\n`);
    const interval = state.config.pingIntervalMs;
    const ping = setInterval(() => {
      if (Date.now() - lastWrite >= interval) void send(": ping\n\n");
    }, Math.max(1, Math.min(interval, 1000)));
    try {
      const opening = responses.opening();
      if (opening) await event(opening);
      await job.ticket.ready;
      const timer = new GenerationTimer(job);
      for await (const item of generation(job, timer)) {
        if (item.type === "text") {
          await event(responses.text(item.text));
          continue;
        }
        timer.done(item);
        await event(responses.finish(item.finishReason));
        if (request.includeUsage) await event(responses.usage(usageOf(item)));
        await send("data: [DONE]\n\n");
      }
    } catch (error) {
      const ended = endedByServer(signal);
      if (ended) {
        state.log(`rill: ${job.id} ended: ${ended.message}`);
        await event(ended.toJSON());
      } else if (signal.aborted) {
        state.metrics.cancellation();
        state.log(`rill: ${job.id} cancelled by the client`);
      } else {
        console.error("rill serve: generation failed:", error);
        await event(toApiError(error).toJSON());
      }
    } finally {
      clearInterval(ping);
      job.ticket.release();
      if (!signal.aborted) controller.abort();
    }
  });
}

/** The error a job's controller was aborted with by the server (a shutdown), if it was. */
function endedByServer(signal: AbortSignal): ApiError | undefined {
  return signal.aborted && signal.reason instanceof ApiError ? signal.reason : undefined;
}

/** The chunks and the whole answer of one response, in OpenAI's envelope. */
interface Responses {
  /** The first chunk of a stream, or null. */
  opening(): object | null;
  text(text: string): object;
  finish(reason: FinishReason): object;
  /** The `choices: []` chunk carrying usage. */
  usage(usage: Usage): object;
  whole(text: string, reason: FinishReason, usage: Usage): object;
}

function responses(
  shape: ResponseShape,
  id: string,
  model: string,
  includeUsage: boolean,
): Responses {
  const created = unixSeconds();
  const choice = (content: object, reason: FinishReason | null) => ({
    index: 0,
    ...content,
    logprobs: null,
    finish_reason: reason,
  });
  const chunk = (content: object, reason: FinishReason | null) => ({
    id,
    object: shape.chunkObject,
    created,
    model,
    choices: [choice(content, reason)],
    ...(includeUsage ? { usage: null } : {}),
  });
  return {
    opening: () => shape.opening === null ? null : chunk(shape.opening, null),
    text: (text) => chunk(shape.text(text), null),
    finish: (reason) => chunk(shape.finish, reason),
    usage: (usage) => ({ id, object: shape.chunkObject, created, model, choices: [], usage }),
    whole: (text, reason, usage) => ({
      id,
      object: shape.wholeObject,
      created,
      model,
      choices: [choice(shape.whole(text), reason)],
      usage,
    }),
  };
}

function generation(job: PreparedJob, timer: GenerationTimer) {
  return job.service.generate(job.promptIds, {
    sampling: job.request.sampling,
    stop: job.request.stop,
    maxTokens: job.maxTokens,
    signal: job.controller.signal,
    onFirstToken: () => timer.token(),
  });
}

/** Unix seconds, as OpenAI's `created`. */
export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A fresh response id with the given prefix (`chatcmpl`, `cmpl`). */
function responseId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replaceAll("-", "")}`;
}

function usageOf(event: { promptTokens: number; completionTokens: number }): Usage {
  return {
    prompt_tokens: event.promptTokens,
    completion_tokens: event.completionTokens,
    total_tokens: event.promptTokens + event.completionTokens,
  };
}

/** Feeds time to first token, decode speed and token counts into the metrics and the log. */
class GenerationTimer {
  readonly #job: PreparedJob;
  #first: number | undefined;

  constructor(job: PreparedJob) {
    this.#job = job;
  }

  token(): void {
    if (this.#first !== undefined) return;
    this.#first = performance.now();
    this.#job.state.metrics.timeToFirstToken((this.#first - this.#job.arrived) / 1000);
  }

  done(
    result: { promptTokens: number; completionTokens: number; finishReason: FinishReason },
  ): void {
    const { state, arrived, id } = this.#job;
    if (this.#first === undefined) this.token();
    const decodeSeconds = (performance.now() - this.#first!) / 1000;
    state.metrics.decode(result.completionTokens - 1, decodeSeconds);
    state.metrics.tokens(result.promptTokens, result.completionTokens);
    const speed = result.completionTokens > 1
      ? `, ${((result.completionTokens - 1) / decodeSeconds).toFixed(1)} tokens/s`
      : "";
    state.log(
      `rill: ${id} prompt ${result.promptTokens} + completion ${result.completionTokens} tokens, ` +
        `finish ${result.finishReason}, first token after ${
          ((this.#first! - arrived) / 1000).toFixed(3)
        } s${speed}`,
    );
  }
}
