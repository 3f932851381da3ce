import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type {
  FinishReason as EngineFinish,
  GenerationEvent,
  InferenceService,
} from "../src/engine/service.ts";
import type { TokenLogprob } from "../src/engine/sampler.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { type ToolCall, type ToolCallDelta, ToolCallParser } from "../src/engine/tool_calls.ts";
import { QueueFullError, type QueueTicket } from "../src/scheduler/queue.ts";
import { ApiError, toApiError } from "./errors.ts";
import type { ServingState } from "./state.ts";
import type { OutputPlan } from "./structured.ts";
import { type GenerationRequest, readJsonObject } from "./validate.ts";

/** Why an answer ended, in OpenAI terms. */
export type FinishReason = EngineFinish | "tool_calls";

/** OpenAI `usage`. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/**
 * What one endpoint puts in its choices; the envelope around them (`id`, `object`, `created`,
 * `model`, `system_fingerprint`, `usage`) and each choice's `index` and `finish_reason` are
 * common.
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
  /** The choice content of the non-streaming answer (with its tool calls, if any). */
  whole(text: string, calls: readonly ToolCall[]): object;
  /** The choice content of a stream chunk carrying tool call deltas (chat only). */
  toolCalls?(deltas: readonly ToolCallDelta[]): object;
  /**
   * The choice's `logprobs` for these tokens; `offset` is where the first one starts in the
   * prompt and completion text.
   */
  logprobs(tokens: readonly LoggedToken[], offset: number): object;
}

/** A token with its log-probability and the most likely alternatives, as clients see it. */
export interface LoggedToken extends TokenText {
  readonly logprob: number;
  readonly top: readonly (TokenText & { readonly logprob: number })[];
}

/** A token as OpenAI's logprobs name it. */
export interface TokenText {
  /** Its text; a piece of a character is written `bytes:\xNN...`. */
  readonly token: string;
  /** Its UTF-8 bytes. */
  readonly bytes: number[];
}

/** What sets one generation endpoint apart from another. */
export interface GenerationEndpoint<R extends GenerationRequest> {
  /** Validates the JSON body. */
  parse(body: Record<string, unknown>): R;
  /** The prompt the request asks to continue: text, or token ids. */
  prompt(service: InferenceService, request: R): string | readonly number[];
  /** The constraint and tool-call reader the request asks for (default: none). */
  output?(state: ServingState, service: InferenceService, request: R): OutputPlan;
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
    const service = state.requireModel(request.model);
    const prompt = endpoint.prompt(service, request);
    const promptIds = promptTokens(service, prompt, endpoint.promptField);
    const output = endpoint.output?.(state, service, request) ?? {};
    const id = responseId(endpoint.idPrefix);
    const job = prepareJob(state, {
      service,
      request,
      promptIds,
      promptField: endpoint.promptField,
      output,
      id,
      arrived,
      clientSignal: c.req.raw.signal,
    });
    const promptLength = typeof prompt === "string"
      ? prompt.length
      : service.tokenizer.decode(prompt).length;
    const writer = responses(endpoint.shape, job, promptLength, request.includeUsage);
    return request.stream ? respondStream(c, job, writer) : await respondWhole(c, job, writer);
  });
  return app;
}

/** The ids of a prompt: text encoded, or ids checked against the vocabulary. */
export function promptTokens(
  service: InferenceService,
  prompt: string | readonly number[],
  field: string,
): number[] {
  if (typeof prompt === "string") {
    // A text too long for any tokenization to fit is refused before tokenizing it all.
    const least = service.leastTokens(prompt);
    if (least > service.contextLength) {
      throw new ApiError(
        400,
        `This model's maximum context length is ${service.contextLength} tokens, but the prompt has at least ${least} tokens`,
        { param: field, code: "context_length_exceeded" },
      );
    }
    return service.encodePrompt(prompt);
  }
  const vocab = service.tokenizer.vocabSize;
  prompt.forEach((id, i) => {
    if (id >= vocab) {
      throw new ApiError(
        400,
        `'${field}[${i}]' is token ${id}, outside the vocabulary (${vocab})`,
        {
          param: `${field}[${i}]`,
          code: "invalid_value",
        },
      );
    }
  });
  return [...prompt];
}

/** What a generation job is made of. */
export interface JobSpec {
  readonly service: InferenceService;
  readonly request: Pick<GenerationRequest, "sampling" | "stop" | "maxTokens" | "logprobs">;
  readonly promptIds: number[];
  /** The request field the prompt came from, named in context errors. */
  readonly promptField: string;
  /** The request field that caps the completion, named in context errors (`max_tokens`). */
  readonly maxTokensField?: string;
  /** The constraint on the output and the reader of its tool calls, if any. */
  readonly output?: OutputPlan;
  /** `performance.now()` when the request arrived. */
  readonly arrived: number;
  /** The response id, for the log. */
  readonly id: string;
  /** Aborts when the client goes away. */
  readonly clientSignal: AbortSignal;
}

/** A job checked against the context and admitted to the queue. */
export interface PreparedJob extends JobSpec {
  readonly state: ServingState;
  readonly maxTokens: number;
  readonly ticket: QueueTicket;
  readonly controller: AbortController;
}

/**
 * Checks the prompt against the context, the logit bias against the vocabulary, and
 * takes a queue place; every failure here is an HTTP error before any byte is sent.
 */
export function prepareJob(state: ServingState, spec: JobSpec): PreparedJob {
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
      { param: spec.maxTokensField ?? "max_tokens", code: "context_length_exceeded" },
    );
  }
  const positions = promptIds.length +
    Math.min(request.maxTokens ?? cap, cap, context - promptIds.length);
  if (positions > service.kvCapacity) {
    throw new ApiError(
      400,
      `This request needs ${positions} positions of KV cache (prompt and completion), more than the ${service.kvCapacity} the server's KV budget holds`,
      { param: promptField, code: "context_length_exceeded" },
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
  const needed = spec.output?.constraint?.tokensToFinish?.(maxTokens) ?? 0;
  if (needed > maxTokens) {
    throw new ApiError(
      400,
      `The shortest answer matching the requested format takes more than the ${maxTokens} tokens ` +
        "this request can generate; raise the token limit or shorten the prompt",
      { param: spec.maxTokensField ?? "max_tokens", code: "max_tokens_too_small" },
    );
  }
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

/** How one endpoint writes the events of a generation. */
export interface JobWriter {
  /** Stream frames sent before the queue place is ready (chat's role delta). */
  opening(): string[];
  /** Stream frames for generated text. */
  text(event: Extract<GenerationEvent, { type: "text" }>): string[];
  /** Stream frames for the end (the last, `data: [DONE]` or its like, included). */
  done(event: Extract<GenerationEvent, { type: "done" }>): string[];
  /** The stream frame for an error after the stream began. */
  error(error: ApiError): string;
  /** The non-streaming answer, given the whole text and every token's logprobs. */
  whole(
    text: string,
    event: Extract<GenerationEvent, { type: "done" }>,
    logprobs: readonly TokenLogprob[],
  ): object;
}

/** A `data:` frame of a server-sent event stream. */
export function dataFrame(payload: object): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

/** Runs a prepared job to its end and answers with the writer's JSON. */
export async function respondWhole(
  c: Context,
  job: PreparedJob,
  writer: JobWriter,
): Promise<Response> {
  const { state } = job;
  const { signal } = job.controller;
  try {
    await job.ticket.ready;
    let text = "";
    const logprobs: TokenLogprob[] = [];
    const timer = new GenerationTimer(job);
    for await (const event of generation(job, timer)) {
      logprobs.push(...event.logprobs ?? []);
      if (event.type === "text") {
        text += event.text;
      } else {
        timer.done(event);
        return c.json(writer.whole(text, event, logprobs));
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

/**
 * Runs a prepared job as a server-sent event stream of the writer's frames, with `: ping`
 * comments while nothing else is sent; a failure after the first byte becomes the writer's
 * error frame.
 */
export function respondStream(c: Context, job: PreparedJob, writer: JobWriter): Response {
  const { state, controller } = job;
  const { signal } = controller;
  return streamSSE(c, async (stream) => {
    stream.onAbort(() => controller.abort(new DOMException("Client disconnected", "AbortError")));
    let lastWrite = Date.now();
    const send = async (frames: string[]) => {
      lastWrite = Date.now();
      for (const frame of frames) if (!stream.aborted) await stream.write(frame);
    };
    const interval = state.config.pingIntervalMs;
    const ping = setInterval(() => {
      if (Date.now() - lastWrite >= interval) void send([": ping\n\n"]);
    }, Math.max(1, Math.min(interval, 1000)));
    try {
      await send(writer.opening());
      await job.ticket.ready;
      const timer = new GenerationTimer(job);
      for await (const event of generation(job, timer)) {
        if (event.type === "text") {
          await send(writer.text(event));
          continue;
        }
        timer.done(event);
        await send(writer.done(event));
      }
    } catch (error) {
      const ended = endedByServer(signal);
      if (ended) {
        state.log(`rill: ${job.id} ended: ${ended.message}`);
        await send([writer.error(ended)]);
      } else if (signal.aborted) {
        state.metrics.cancellation();
        state.log(`rill: ${job.id} cancelled by the client`);
      } else {
        console.error("rill serve: generation failed:", error);
        await send([writer.error(toApiError(error))]);
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

/**
 * The chunks and the whole answer of a chat or text completion, in OpenAI's envelope.
 * `promptLength` is the prompt's length in characters, where completion logprobs' text offsets
 * start.
 */
function responses(
  shape: ResponseShape,
  job: PreparedJob,
  promptLength: number,
  includeUsage: boolean,
): JobWriter {
  const { id, service, request } = job;
  const parsing = job.output?.toolCalls === true;
  const parser = parsing ? new ToolCallParser(service.toolFamily) : undefined;
  const created = unixSeconds();
  const envelope = {
    id,
    object: shape.chunkObject,
    created,
    model: service.modelId,
    system_fingerprint: service.systemFingerprint,
  };
  let offset = promptLength;
  const logprobs = (entries: readonly TokenLogprob[] | undefined) => {
    if (request.logprobs === undefined) return null;
    const tokens = (entries ?? []).map((e) => loggedToken(service.tokenizer, e));
    const value = shape.logprobs(tokens, offset);
    for (const t of tokens) offset += t.token.length;
    return value;
  };
  const choice = (
    content: object,
    reason: FinishReason | null,
    entries?: readonly TokenLogprob[],
  ) => ({ index: 0, ...content, logprobs: logprobs(entries), finish_reason: reason });
  // Log-probabilities of text a tool-call reader held back go out with the next chunk.
  let held: TokenLogprob[] = [];
  const parsed = (piece: { content: string; calls: readonly ToolCallDelta[] }, entries = held) => {
    const frames: string[] = [];
    if (piece.content !== "") frames.push(chunk(shape.text(piece.content), null, entries));
    if (piece.calls.length > 0) {
      if (!shape.toolCalls) throw new TypeError(`${shape.chunkObject} has no tool calls`);
      frames.push(chunk(shape.toolCalls(piece.calls), null, frames.length > 0 ? [] : entries));
    }
    held = frames.length > 0 ? [] : entries;
    return frames;
  };
  const chunk = (content: object, reason: FinishReason | null, entries?: readonly TokenLogprob[]) =>
    dataFrame({
      ...envelope,
      choices: [choice(content, reason, entries)],
      ...(includeUsage ? { usage: null } : {}),
    });
  return {
    opening: () => shape.opening === null ? [] : [chunk(shape.opening, null)],
    text: (event) =>
      parser
        ? parsed(parser.push(event.text), [...held, ...event.logprobs ?? []])
        : [chunk(shape.text(event.text), null, event.logprobs)],
    done: (event) => [
      ...(parser ? parsed(parser.flush()) : []),
      chunk(
        shape.finish,
        (parser?.calls.length ?? 0) > 0 ? "tool_calls" : event.finishReason,
        [...held, ...event.logprobs ?? []],
      ),
      ...(includeUsage ? [dataFrame({ ...envelope, choices: [], usage: usageOf(event) })] : []),
      "data: [DONE]\n\n",
    ],
    error: (error) => dataFrame(error.toJSON()),
    whole: (text, event, entries) => {
      const { content, calls } = parsing
        ? parseToolCalls(service, text)
        : { content: text, calls: [] };
      const reason = calls.length > 0 ? "tool_calls" : event.finishReason;
      return {
        ...envelope,
        object: shape.wholeObject,
        choices: [choice(shape.whole(content, calls), reason, entries)],
        usage: usageOf(event),
      };
    },
  };
}

/** A whole answer's text split into content and tool calls in the model's format. */
export function parseToolCalls(
  service: InferenceService,
  text: string,
): { content: string; calls: readonly ToolCall[] } {
  const parser = new ToolCallParser(service.toolFamily);
  const content = parser.push(text).content + parser.flush().content;
  return { content, calls: parser.calls };
}

/** A token's log-probability and alternatives with their texts. */
export function loggedToken(tokenizer: Tokenizer, entry: TokenLogprob): LoggedToken {
  return {
    ...tokenText(tokenizer, entry.id),
    logprob: entry.logprob,
    top: entry.top.map((t) => ({ ...tokenText(tokenizer, t.id), logprob: t.logprob })),
  };
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/** A token's text and bytes; special tokens have no bytes and are named by their piece. */
export function tokenText(tokenizer: Tokenizer, id: number): TokenText {
  const bytes = tokenizer.tokenBytes(id);
  if (bytes.length === 0) return { token: tokenizer.piece?.(id) ?? "", bytes: [] };
  let token: string;
  try {
    token = STRICT_UTF8.decode(bytes);
  } catch {
    token = `bytes:${[...bytes].map((b) => `\\x${b.toString(16).padStart(2, "0")}`).join("")}`;
  }
  return { token, bytes: [...bytes] };
}

function generation(job: PreparedJob, timer: GenerationTimer) {
  const { logprobs } = job.request;
  return job.service.generate(job.promptIds, {
    sampling: job.request.sampling,
    stop: job.request.stop,
    maxTokens: job.maxTokens,
    signal: job.controller.signal,
    onFirstToken: () => timer.token(),
    ...(logprobs === undefined ? {} : { logprobs }),
    ...(job.output?.constraint ? { constraint: job.output.constraint } : {}),
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

function usageOf(
  event: { promptTokens: number; completionTokens: number; cachedTokens: number },
): Usage {
  return {
    prompt_tokens: event.promptTokens,
    completion_tokens: event.completionTokens,
    total_tokens: event.promptTokens + event.completionTokens,
    prompt_tokens_details: { cached_tokens: event.cachedTokens },
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
    const stats = this.#job.output?.constraint?.stats;
    if (stats) state.metrics.constrained(stats.masks, stats.seconds);
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
