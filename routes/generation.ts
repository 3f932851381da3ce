import { Hono } from "hono";
import type { InferenceService } from "../src/engine/service.ts";
import type { TokenLogprob } from "../src/engine/sampler.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { type ToolCall, type ToolCallDelta, ToolCallParser } from "../src/engine/tool_calls.ts";
import type { ServingState } from "./state.ts";
import type { OutputPlan } from "./structured.ts";
import { type GenerationRequest, readJsonObject } from "./validate.ts";
import {
  dataFrame,
  type FinishReason,
  type JobWriter,
  type PreparedJob,
  prepareJob,
  promptTokens,
  respondStream,
  respondWhole,
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
