import { Hono } from "hono";
import type { GenerationEvent, InferenceService } from "../src/engine/service.ts";
import type { TokenLogprob } from "../src/engine/sampler.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { IncrementalDetokenizer } from "../src/engine/detokenizer.ts";
import { type ReasoningStart, reasoningStart } from "../src/engine/reasoning.ts";
import { type ToolCall, type ToolCallDelta, ToolCallParser } from "../src/engine/tool_calls.ts";
import type { ServingState } from "./state.ts";
import { ApiError } from "./errors.ts";
import type { OutputPlan } from "./structured.ts";
import { type GenerationRequest, promptFieldOf, readJsonObject } from "./validate.ts";
import {
  type Answer,
  checkChoices,
  dataFrame,
  type DoneEvent,
  type FinishReason,
  type JobWriter,
  type PreparedJob,
  prepareJob,
  type PromptEvent,
  promptOf,
  promptTokens,
  respondStream,
  respondWhole,
  scoresPrompt,
  unixSeconds,
  type Usage,
} from "./job.ts";

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
  /**
   * The choice content of the non-streaming answer (with its tool calls and the reasoning a
   * thinking model wrote before it, if any).
   */
  whole(text: string, calls: readonly ToolCall[], reasoning?: string): object;
  /** The choice content of a stream chunk carrying reasoning (chat only). */
  reasoning?(text: string): object;
  /** The choice content of a stream chunk carrying tool call deltas (chat only). */
  toolCalls?(deltas: readonly ToolCallDelta[]): object;
  /**
   * The choice's `logprobs` for these tokens, after `unscored` when given (an echoed prompt's
   * first token, which has no log-probability); `offsets` are where each starts in the choice's
   * text (with the prompt's, echoed or not), `unscored` first.
   */
  logprobs(
    tokens: readonly LoggedToken[],
    offsets: readonly number[],
    unscored?: TokenText,
  ): object;
}

/**
 * A generated token's entry in OpenAI's logprobs (chat's `content[]`, Responses' `logprobs`),
 * as Ollama writes them too: its text, log-probability, bytes and top alternatives.
 */
export function logprobEntry({ token, logprob, bytes, top }: LoggedToken): object {
  return {
    token,
    logprob,
    bytes,
    top_logprobs: top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
  };
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
  /** The prompts the request asks to continue (each a text or token ids), one or more. */
  prompts(service: InferenceService, request: R): readonly (string | readonly number[])[];
  /** The constraint and tool-call reader the request asks for (default: none). */
  output?(
    state: ServingState,
    service: InferenceService,
    request: R,
    reasoning: ReasoningStart | null,
  ): OutputPlan;
  /** The request field the prompt came from, named in context errors. */
  readonly promptField: string;
  /**
   * A thinking model's answers are split into reasoning and content (by the markers its chat
   * template writes), and its constraint holds after the reasoning (default false).
   */
  readonly splitsReasoning?: boolean;
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
    if (scoresPrompt(request) && !service.scoresPrompts) {
      throw new ApiError(
        400,
        `The model '${service.modelId}' gives no log-probabilities of a prompt's tokens: ask for echo without logprobs`,
        { param: "echo", code: "model_not_supported" },
      );
    }
    const prompts = endpoint.prompts(service, request);
    const { promptField } = endpoint;
    const choices = checkChoices(state, prompts.length, request.n, promptField);
    const promptIds = prompts.map((prompt, i) =>
      promptTokens(service, prompt, promptFieldOf(promptField, prompts.length, i))
    );
    const promptTexts = prompts.map((prompt) =>
      typeof prompt === "string" ? prompt : service.tokenizer.decode(prompt)
    );
    // A thinking model's answer is split into reasoning and content, its constraint left off
    // until the reasoning ends.
    const starts = promptTexts.map((text) =>
      endpoint.splitsReasoning ? reasoningStart(service.chatTemplate, text) : null
    );
    const startOf = (choice: number) => starts[Math.floor(choice / request.n)]!;
    // Each choice's constraint follows its own tokens.
    const outputs = Array.from(
      { length: choices },
      (_, choice) => endpoint.output?.(state, service, request, startOf(choice)) ?? {},
    );
    const id = responseId(endpoint.idPrefix);
    const job = prepareJob(state, {
      service,
      request,
      prompts: promptIds,
      promptField,
      outputs,
      id,
      arrived,
      clientSignal: c.req.raw.signal,
    });
    const writer = responses(endpoint.shape, job, promptTexts, request.includeUsage);
    return request.stream ? respondStream(c, job, writer) : await respondWhole(c, job, writer);
  });
  return app;
}

/**
 * The chunks and the whole answer of a chat or text completion, in OpenAI's envelope, each
 * choice with its index. `promptTexts` are the prompts as text: what `echo` sends back, and
 * where completion logprobs' text offsets start.
 */
function responses(
  shape: ResponseShape,
  job: PreparedJob,
  promptTexts: readonly string[],
  includeUsage: boolean,
): JobWriter {
  const { id, service } = job;
  const parsing = job.outputs?.[0]?.toolCalls === true;
  const created = unixSeconds();
  const envelope = {
    id,
    object: shape.chunkObject,
    created,
    model: service.modelId,
    system_fingerprint: service.systemFingerprint,
  };
  const writers = Array.from(
    { length: job.choices },
    (_, index) => new ChoiceWriter(shape, job, index, promptTexts[promptOf(job, index)]!, parsing),
  );
  const chunk = (choice: object) =>
    dataFrame({ ...envelope, choices: [choice], ...(includeUsage ? { usage: null } : {}) });
  return {
    opening: (choice) => writers[choice]!.opening().map(chunk),
    prompt: (event, choice) => writers[choice]!.prompt(event).map(chunk),
    text: (event, choice) => writers[choice]!.text(event).map(chunk),
    done: (event, choice) => writers[choice]!.done(event).map(chunk),
    end: (events) => [
      ...(includeUsage
        ? [dataFrame({ ...envelope, choices: [], usage: usageOf(job, events) })]
        : []),
      "data: [DONE]\n\n",
    ],
    error: (error) => dataFrame(error.toJSON()),
    whole: (answers) => ({
      ...envelope,
      object: shape.wholeObject,
      choices: answers.map((answer, index) => writers[index]!.whole(answer)),
      usage: usageOf(job, answers.map((a) => a.event)),
    }),
  };
}

/** The choice objects of one choice: its text, tool calls and logprobs as they arrive. */
class ChoiceWriter {
  readonly #shape: ResponseShape;
  readonly #job: PreparedJob;
  readonly #index: number;
  readonly #parser: ToolCallParser | undefined;
  /** Where the next token's text starts in the prompt and completion text. */
  #offset: number;
  /** The prompt, when the choice's text starts with it (`echo`). */
  readonly #echo: string | null;
  /** Log-probabilities of text held back (a piece of a marker or a call), for the next chunk. */
  #held: TokenLogprob[] = [];

  constructor(
    shape: ResponseShape,
    job: PreparedJob,
    index: number,
    promptText: string,
    parsing: boolean,
  ) {
    this.#shape = shape;
    this.#job = job;
    this.#index = index;
    this.#offset = promptText.length;
    this.#echo = job.request.echo ? promptText : null;
    this.#parser = parsing ? new ToolCallParser(job.service.toolFamily) : undefined;
  }

  /**
   * The choice's first chunks: the shape's opening, and an echoed prompt unless it waits for
   * its log-probabilities.
   */
  opening(): object[] {
    const opening = this.#shape.opening === null ? [] : [this.#choice(this.#shape.opening, null)];
    if (this.#echo !== null && this.#job.request.logprobs === undefined) {
      opening.push(this.#choice(this.#shape.text(this.#echo), null));
    }
    return opening;
  }

  /** The echoed prompt with its log-probabilities. */
  prompt(event: PromptEvent): object[] {
    if (this.#echo === null) return [];
    return [this.#choice(this.#shape.text(this.#echo), null, [], event)];
  }

  /** The chunks of a piece of reasoning and answer; the logprobs go with the first. */
  text(event: Extract<GenerationEvent, { type: "text" }>): object[] {
    let entries = [...this.#held, ...event.logprobs ?? []];
    const out: object[] = [];
    if (event.reasoning !== undefined) {
      const reasoning = this.#shape.reasoning;
      if (!reasoning) throw new TypeError(`${this.#shape.chunkObject} has no reasoning`);
      out.push(this.#choice(reasoning(event.reasoning), null, entries));
      entries = [];
    }
    if (this.#parser) return [...out, ...this.#parsed(this.#parser.push(event.text), entries)];
    if (event.text !== "") out.push(this.#choice(this.#shape.text(event.text), null, entries));
    this.#held = out.length > 0 ? [] : entries;
    return out;
  }

  done(event: DoneEvent): object[] {
    const last = this.#parser ? this.#parsed(this.#parser.flush()) : [];
    const reason = (this.#parser?.calls.length ?? 0) > 0 ? "tool_calls" : event.finishReason;
    return [
      ...last,
      this.#choice(this.#shape.finish, reason, [...this.#held, ...event.logprobs ?? []]),
    ];
  }

  whole({ text, reasoning, event, logprobs, prompt }: Answer): object {
    const { content, calls } = this.#parser
      ? parseToolCalls(this.#job.service, text)
      : { content: text, calls: [] };
    const reason = calls.length > 0 ? "tool_calls" : event.finishReason;
    const shown = (this.#echo ?? "") + content;
    return this.#choice(this.#shape.whole(shown, calls, reasoning), reason, logprobs, prompt);
  }

  #choice(
    content: object,
    reason: FinishReason | null,
    entries?: readonly TokenLogprob[],
    prompt: PromptEvent | null = null,
  ) {
    return {
      index: this.#index,
      ...content,
      logprobs: this.#logprobs(entries, prompt),
      finish_reason: reason,
    };
  }

  /** The `logprobs` of generated tokens, after the prompt's when given. */
  #logprobs(entries: readonly TokenLogprob[] | undefined, prompt: PromptEvent | null) {
    if (this.#job.request.logprobs === undefined) return null;
    const tokenizer = this.#job.service.tokenizer;
    const tokens: LoggedToken[] = [];
    const offsets: number[] = [];
    let unscored: TokenText | undefined;
    if (prompt !== null) {
      const ids = this.#job.prompts[promptOf(this.#job, this.#index)]!;
      unscored = tokenText(tokenizer, ids[0]!);
      // Where each token's text starts in the prompt's decoded text.
      const detokenizer = new IncrementalDetokenizer(tokenizer);
      let at = 0;
      for (const id of ids) {
        offsets.push(at);
        at += detokenizer.push(id).length;
      }
      tokens.push(...prompt.logprobs.map((e) => loggedToken(tokenizer, e)));
    }
    for (const entry of entries ?? []) {
      const token = loggedToken(tokenizer, entry);
      tokens.push(token);
      offsets.push(this.#offset);
      this.#offset += token.token.length;
    }
    return this.#shape.logprobs(tokens, offsets, unscored);
  }

  #parsed(
    piece: { content: string; calls: readonly ToolCallDelta[] },
    entries: readonly TokenLogprob[] = this.#held,
  ): object[] {
    const choices: object[] = [];
    if (piece.content !== "") {
      choices.push(this.#choice(this.#shape.text(piece.content), null, entries));
    }
    if (piece.calls.length > 0) {
      const toolCalls = this.#shape.toolCalls;
      if (!toolCalls) throw new TypeError(`${this.#shape.chunkObject} has no tool calls`);
      choices.push(
        this.#choice(toolCalls(piece.calls), null, choices.length > 0 ? [] : entries),
      );
    }
    this.#held = choices.length > 0 ? [] : [...entries];
    return choices;
  }
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

/** A fresh response id with the given prefix (`chatcmpl`, `cmpl`). */
function responseId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().replaceAll("-", "")}`;
}

/**
 * The usage of a request's choices: each prompt once (as its first choice read it), every
 * completion.
 */
function usageOf(job: PreparedJob, events: readonly DoneEvent[]): Usage {
  const firsts = events.filter((_, choice) => choice % job.n === 0);
  const prompt = firsts.reduce((n, e) => n + e.promptTokens, 0);
  const cached = firsts.reduce((n, e) => n + e.cachedTokens, 0);
  const reasoning = events.reduce((n, e) => n + e.reasoningTokens, 0);
  const completion = events.reduce((n, e) => n + e.completionTokens, 0);
  const accepted = events.reduce((n, e) => n + e.acceptedPredictionTokens, 0);
  const rejected = events.reduce((n, e) => n + e.rejectedPredictionTokens, 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
    completion_tokens_details: {
      reasoning_tokens: reasoning,
      accepted_prediction_tokens: accepted,
      rejected_prediction_tokens: rejected,
    },
  };
}
