/**
 * One generation request as a job: its prompt tokens, its place in the queue, and how its
 * events are written out, whole or streamed over server-sent events.
 */
import type { Context } from "hono";
import { stream as streamBody, streamSSE } from "hono/streaming";
import type { StreamingApi } from "hono/utils/stream";
import type {
  FinishReason as EngineFinish,
  GenerationEvent,
  InferenceService,
} from "../src/engine/service.ts";
import type { TokenLogprob } from "../src/engine/sampler.ts";
import { FIM_MARKERS, fimPrompt, type FimTokens, fimTokens } from "../src/engine/fill_in_middle.ts";
import { QueueFullError } from "../src/scheduler/queue.ts";
import { ApiError, toApiError } from "./errors.ts";
import type { JobTicket, ServingState } from "./state.ts";
import type { OutputPlan } from "./structured.ts";
import { type GenerationRequest, promptFieldOf } from "./validate.ts";

/** Why an answer ended, in OpenAI terms. */
export type FinishReason = EngineFinish | "tool_calls";

/** OpenAI `usage`. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: {
    reasoning_tokens: number;
    accepted_prediction_tokens: number;
    rejected_prediction_tokens: number;
  };
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

/**
 * The fill-in-the-middle prompt of `prefix` (text, or ids named `field` in errors) and
 * `suffix`: a 400 naming `suffix` when the model's vocabulary has no such tokens, and one naming
 * `field` when the texts cannot fit the context, before they are tokenized.
 */
export function fimPromptTokens(
  service: InferenceService,
  prefix: string | readonly number[],
  suffix: string,
  field: string,
): number[] {
  const tokens = requireFimTokens(service, "suffix");
  const least = (typeof prefix === "string" ? service.leastTokens(prefix) : prefix.length) +
    service.leastTokens(suffix);
  if (least > service.contextLength) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${service.contextLength} tokens, but '${field}' and 'suffix' have at least ${least} tokens`,
      { param: field, code: "context_length_exceeded" },
    );
  }
  const before = typeof prefix === "string" ? prefix : promptTokens(service, prefix, field);
  return fimPrompt(service.tokenizer, tokens, before, suffix);
}

/** The model's fill-in-the-middle tokens, or a 400 naming `field` when it has none. */
export function requireFimTokens(service: InferenceService, field: string): FimTokens {
  const tokens = fimTokens(service.tokenizer);
  if (tokens === null) {
    throw new ApiError(
      400,
      `The model '${service.modelId}' cannot fill in the middle: its vocabulary has no such tokens (${
        FIM_MARKERS.join(", ")
      }, ...)`,
      { param: field, code: "model_not_supported" },
    );
  }
  return tokens;
}

/** What a generation job is made of. */
export interface JobSpec {
  readonly service: InferenceService;
  readonly request:
    & Pick<GenerationRequest, "sampling" | "stop" | "maxTokens" | "logprobs">
    & Partial<Pick<GenerationRequest, "n" | "stopTokenIds" | "ignoreEos" | "minTokens">>
    & {
      readonly echo?: boolean;
      /** Most tokens of a thinking model's reasoning block (see `GenerateOptions`). */
      readonly reasoningBudget?: number | undefined;
      /** The text the answer is expected to repeat (see `GenerateOptions.prediction`). */
      readonly prediction?: string | undefined;
      /** Code completion's least indentation and time limit (see `GenerateOptions`). */
      readonly minIndent?: number;
      readonly timeLimitMs?: number | undefined;
    };
  /** The prompts' ids, one or more; each gets `request.n` choices. */
  readonly prompts: readonly (readonly number[])[];
  /** The request field the prompts came from, named in context errors. */
  readonly promptField: string;
  /** The request field that caps the completion, named in context errors (`max_tokens`). */
  readonly maxTokensField?: string;
  /**
   * One output plan per choice (its constraint and whether tool calls are read); none: free
   * text.
   */
  readonly outputs?: readonly OutputPlan[];
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
  /**
   * How many choices it generates (`n` per prompt), each a sequence of its own; choice
   * p * n + j is prompt p's choice j.
   */
  readonly choices: number;
  /** Choices per prompt. */
  readonly n: number;
  /** Each prompt's completion cap: the request's, the server's and the context left. */
  readonly maxTokens: readonly number[];
  /** A queue place per choice; a choice runs once its place is ready. */
  readonly ticket: JobTicket;
  readonly controller: AbortController;
}

/** The prompt choice `choice` of a job continues. */
export function promptOf(job: PreparedJob, choice: number): number {
  return Math.floor(choice / job.n);
}

/**
 * `count` tasks (`task(i, signal)`, the signal aborting when the client goes away) run as
 * sequences of the scheduler's batch: at most `maxBatch` places taken in the queue, each
 * running every places-th task one after the other; their results by task. A client gone is
 * a 499, a server ending the work its reason.
 */
export async function inPlaces<T>(
  state: ServingState,
  clientSignal: AbortSignal,
  count: number,
  task: (i: number, signal: AbortSignal) => Promise<T>,
): Promise<T[]> {
  const places = Math.min(count, state.config.maxBatch);
  const { controller, ticket } = admitPlaces(state, clientSignal, places);
  try {
    const results: T[] = new Array(count);
    await Promise.all(Array.from({ length: places }, (_, first) =>
      ticket.run(first, async () => {
        for (let i = first; i < count; i += places) {
          results[i] = await task(i, controller.signal);
        }
      })));
    return results;
  } catch (error) {
    if (controller.signal.aborted && !(controller.signal.reason instanceof ApiError)) {
      state.metrics.cancellation();
      throw new ApiError(499, "Client closed the request", { code: "cancelled" });
    }
    throw controller.signal.reason instanceof ApiError ? controller.signal.reason : error;
  } finally {
    ticket.release();
    controller.abort();
  }
}

/**
 * Checks each prompt against the context, the logit bias against the vocabulary, and takes
 * a queue place per choice; every failure here is an HTTP error before any byte is sent.
 */
export function prepareJob(state: ServingState, spec: JobSpec): PreparedJob {
  const { service, request, prompts, promptField, clientSignal } = spec;
  const n = request.n ?? 1;
  const choices = checkChoices(state, prompts.length, n, promptField);
  const maxTokens = prompts.map((ids, i) =>
    checkPrompt(state, spec, ids, promptFieldOf(promptField, prompts.length, i))
  );
  const vocab = service.tokenizer.vocabSize;
  for (const id of request.sampling.logitBias?.keys() ?? []) {
    if (id >= vocab) {
      throw new ApiError(400, `'logit_bias' token id ${id} is outside the vocabulary (${vocab})`, {
        param: "logit_bias",
        code: "invalid_value",
      });
    }
  }
  request.stopTokenIds?.forEach((id, i) => {
    if (id >= vocab) {
      throw new ApiError(
        400,
        `'stop_token_ids[${i}]' is token ${id}, outside the vocabulary (${vocab})`,
        { param: `stop_token_ids[${i}]`, code: "invalid_value" },
      );
    }
  });
  const { controller, ticket } = admitPlaces(state, clientSignal, choices);
  return { ...spec, state, choices, n, maxTokens, ticket, controller };
}

/**
 * A controller that aborts when the client goes away (or the server ends the work), and
 * `places` places in the queue for it; a full queue is a 429.
 */
export function admitPlaces(
  state: ServingState,
  clientSignal: AbortSignal,
  places: number,
): { controller: AbortController; ticket: JobTicket } {
  const controller = new AbortController();
  const onClientAbort = () =>
    controller.abort(new DOMException("Client disconnected", "AbortError"));
  if (clientSignal.aborted) onClientAbort();
  else clientSignal.addEventListener("abort", onClientAbort, { once: true });
  controller.signal.addEventListener("abort", () => {
    clientSignal.removeEventListener("abort", onClientAbort);
  });
  try {
    return { controller, ticket: state.admit(controller, places) };
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
}

/**
 * The number of choices of `prompts` prompts with `n` choices each, or a 400 when the server
 * cannot run and queue that many at once.
 */
export function checkChoices(
  state: ServingState,
  prompts: number,
  n: number,
  promptField: string,
): number {
  const choices = prompts * n;
  const { maxBatch, maxQueue } = state.config;
  if (choices > maxBatch + maxQueue) {
    throw new ApiError(
      400,
      `This request asks for ${choices} completions (${prompts} prompt(s), n = ${n}), more than the ${
        maxBatch + maxQueue
      } this server runs and queues at once (--max-batch + --max-queue)`,
      { param: prompts > 1 ? promptField : "n", code: "invalid_value" },
    );
  }
  return choices;
}

/** A 400 naming `field` when `promptIds` leave no room in the context. */
export function checkContext(
  service: InferenceService,
  promptIds: readonly number[],
  field: string,
): void {
  const context = service.contextLength;
  if (promptIds.length >= context) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${context} tokens, but '${field}' has ${promptIds.length} tokens`,
      { param: field, code: "context_length_exceeded" },
    );
  }
}

/**
 * Checks one prompt (named `field` in errors) against the context, the KV budget and the
 * output's format; returns its completion cap.
 */
function checkPrompt(
  state: ServingState,
  spec: JobSpec,
  promptIds: readonly number[],
  field: string,
): number {
  const { service, request } = spec;
  checkContext(service, promptIds, field);
  const context = service.contextLength;
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
  const maxTokens = Math.min(request.maxTokens ?? cap, cap, context - promptIds.length);
  const positions = promptIds.length + maxTokens;
  if (positions > service.kvCapacity) {
    throw new ApiError(
      400,
      `This request needs ${positions} positions of KV cache (prompt and completion), more than the ${service.kvCapacity} the server's KV budget holds`,
      { param: field, code: "context_length_exceeded" },
    );
  }
  const needed = spec.outputs?.[0]?.constraint?.tokensToFinish?.(maxTokens) ?? 0;
  if (needed > maxTokens) {
    throw new ApiError(
      400,
      `The shortest answer matching the requested format takes more than the ${maxTokens} tokens ` +
        "this request can generate; raise the token limit or shorten the prompt",
      { param: spec.maxTokensField ?? "max_tokens", code: "max_tokens_too_small" },
    );
  }
  return maxTokens;
}

/** The end of one choice's generation. */
export type DoneEvent = Extract<GenerationEvent, { type: "done" }>;

/** The log-probabilities of a prompt's tokens (after its first), for `echo`. */
export type PromptEvent = Extract<GenerationEvent, { type: "prompt" }>;

/** One choice's whole answer: its text, its end, and every token's logprobs. */
export interface Answer {
  readonly text: string;
  /** A thinking model's reasoning, apart from `text` ("" for others). */
  readonly reasoning: string;
  readonly event: DoneEvent;
  readonly logprobs: readonly TokenLogprob[];
  /** Its prompt's, when asked for (`echo` with `logprobs`). */
  readonly prompt: PromptEvent | null;
  /** `performance.now()` when its first text arrived (its end's, when none did). */
  readonly firstTextAt: number;
}

/**
 * How one endpoint writes the events of a generation. Choices are numbered from 0; an
 * endpoint without `n` only ever sees choice 0.
 */
export interface JobWriter {
  /** A choice's stream frames sent before the queue place is ready (chat's role delta). */
  opening(choice: number): string[];
  /** A choice's stream frames for its prompt's log-probabilities (asked for by `echo`). */
  prompt?(event: PromptEvent, choice: number): string[];
  /** A choice's stream frames for generated text. */
  text(event: Extract<GenerationEvent, { type: "text" }>, choice: number): string[];
  /** A choice's stream frames for its end. */
  done(event: DoneEvent, choice: number): string[];
  /** Stream frames once every choice ended (the usage, `data: [DONE]`), given their ends. */
  end?(events: readonly DoneEvent[]): string[];
  /** The stream frame for an error after the stream began. */
  error(error: ApiError): string;
  /** The non-streaming answer, given every choice's, by choice. */
  whole(answers: readonly Answer[]): object;
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
    const timer = new GenerationTimer(job);
    const answers = await eachChoice(job, timer, async (choice, events) => {
      let text = "";
      let reasoning = "";
      const logprobs: TokenLogprob[] = [];
      let prompt: PromptEvent | null = null;
      let firstTextAt: number | undefined;
      for await (const event of events) {
        if (event.type === "prompt") {
          prompt = event;
          continue;
        }
        logprobs.push(...event.logprobs ?? []);
        if (event.type === "text") {
          firstTextAt ??= performance.now();
          text += event.text;
          reasoning += event.reasoning ?? "";
        } else {
          timer.done(event, choice);
          firstTextAt ??= performance.now();
          return { text, reasoning, event, logprobs, prompt, firstTextAt };
        }
      }
      throw new Error("Generation ended without a result");
    });
    return c.json(writer.whole(answers));
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
 * How a stream's frames go out: as server-sent events, or as Ollama's lines of JSON
 * (`application/x-ndjson`), which have no comments to ping with.
 */
export type StreamFormat = "sse" | "ndjson";

/**
 * Runs a prepared job as a stream of the writer's frames (server-sent events, with `: ping`
 * comments while nothing else is sent, or lines of JSON); a failure after the first byte becomes
 * the writer's error frame.
 */
export function respondStream(
  c: Context,
  job: PreparedJob,
  writer: JobWriter,
  format: StreamFormat = "sse",
): Response {
  const { state, controller } = job;
  const { signal } = controller;
  const run = async (stream: StreamingApi) => {
    stream.onAbort(() => controller.abort(new DOMException("Client disconnected", "AbortError")));
    let lastWrite = Date.now();
    const send = async (frames: string[]) => {
      lastWrite = Date.now();
      for (const frame of frames) if (!stream.aborted) await stream.write(frame);
    };
    const interval = state.config.pingIntervalMs;
    const ping = format === "sse"
      ? setInterval(() => {
        if (Date.now() - lastWrite >= interval) void send([": ping\n\n"]);
      }, Math.max(1, Math.min(interval, 1000)))
      : undefined;
    try {
      for (let choice = 0; choice < job.choices; choice++) await send(writer.opening(choice));
      const timer = new GenerationTimer(job);
      // Each choice's frames are whole events, so the choices' streams interleave freely.
      const ends = await eachChoice(job, timer, async (choice, events) => {
        for await (const event of events) {
          if (event.type === "prompt") {
            await send(writer.prompt?.(event, choice) ?? []);
            continue;
          }
          if (event.type === "text") {
            await send(writer.text(event, choice));
            continue;
          }
          timer.done(event, choice);
          await send(writer.done(event, choice));
          return event;
        }
        throw new Error("Generation ended without a result");
      });
      await send(writer.end?.(ends) ?? []);
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
  };
  if (format === "sse") return streamSSE(c, run);
  c.header("Content-Type", "application/x-ndjson");
  return streamBody(c, run);
}

/** The error a job's controller was aborted with by the server (a shutdown), if it was. */
function endedByServer(signal: AbortSignal): ApiError | undefined {
  return signal.aborted && signal.reason instanceof ApiError ? signal.reason : undefined;
}

/**
 * Runs `run` over each choice's generation as soon as its queue place is ready, and frees
 * the place when it ends; the results by choice. The scheduler computes a shared prompt
 * once: the choices after the first wait for the blocks it computes.
 */
function eachChoice<T>(
  job: PreparedJob,
  timer: GenerationTimer,
  run: (choice: number, events: AsyncIterable<GenerationEvent>) => Promise<T>,
): Promise<T[]> {
  return Promise.all(
    Array.from(
      { length: job.choices },
      (_, choice) => job.ticket.run(choice, () => run(choice, generation(job, timer, choice))),
    ),
  );
}

/**
 * The engine's generation of one choice of a prepared job. With a seed, choice i samples
 * with seed + i: each choice is the answer a request for one choice with that seed gets.
 */
function generation(job: PreparedJob, timer: GenerationTimer, choice: number) {
  const { logprobs, sampling } = job.request;
  const constraint = job.outputs?.[choice]?.constraint;
  const reasoning = job.outputs?.[choice]?.reasoning;
  const prompt = promptOf(job, choice);
  return job.service.generate(job.prompts[prompt]!, {
    sampling: sampling.seed === undefined
      ? sampling
      : { ...sampling, seed: sampling.seed + choice },
    stop: job.request.stop,
    stopTokenIds: job.request.stopTokenIds ?? [],
    ignoreEos: job.request.ignoreEos ?? false,
    minTokens: job.request.minTokens ?? 0,
    maxTokens: job.maxTokens[prompt]!,
    signal: job.controller.signal,
    onFirstToken: () => timer.token(),
    ...(logprobs === undefined ? {} : { logprobs }),
    ...(logprobs !== undefined && scoresPrompt(job.request) ? { promptLogprobs: logprobs } : {}),
    ...(constraint ? { constraint } : {}),
    ...(reasoning ? { reasoning } : {}),
    ...(reasoning && job.request.reasoningBudget !== undefined
      ? { reasoningBudget: job.request.reasoningBudget }
      : {}),
    ...(job.request.minIndent ? { minIndent: job.request.minIndent } : {}),
    ...(job.request.timeLimitMs === undefined ? {} : { timeLimitMs: job.request.timeLimitMs }),
    ...(job.request.prediction === undefined ? {} : { prediction: job.request.prediction }),
  });
}

/** True when `request` asks for its prompt's log-probabilities (`echo` with `logprobs`). */
export function scoresPrompt(request: JobSpec["request"]): boolean {
  return request.echo === true && request.logprobs !== undefined;
}

/** Unix seconds, as OpenAI's `created`. */
export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
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

  /** Choice `choice` ended; a prompt's tokens are counted with its first choice's. */
  done(
    result: { promptTokens: number; completionTokens: number; finishReason: FinishReason },
    choice: number,
  ): void {
    const { state, arrived, id, choices } = this.#job;
    const stats = this.#job.outputs?.[choice]?.constraint?.stats;
    if (stats) state.metrics.constrained(stats.masks, stats.seconds);
    if (this.#first === undefined) this.token();
    const now = performance.now();
    const decodeSeconds = (now - this.#first!) / 1000;
    state.metrics.decode(result.completionTokens - 1, decodeSeconds);
    state.metrics.generationDuration((now - arrived) / 1000);
    const first = choice % this.#job.n === 0;
    state.metrics.tokens(first ? result.promptTokens : 0, result.completionTokens);
    const speed = result.completionTokens > 1
      ? `, ${((result.completionTokens - 1) / decodeSeconds).toFixed(1)} tokens/s`
      : "";
    state.log(
      `rill: ${id}${choices > 1 ? ` choice ${choice}` : ""} prompt ${result.promptTokens} + ` +
        `completion ${result.completionTokens} tokens, finish ${result.finishReason}, first token after ${
          ((this.#first! - arrived) / 1000).toFixed(3)
        } s${speed}`,
    );
  }
}
