/**
 * Anthropic's Messages API: `POST /v1/messages`, whole or streamed with its event types, and
 * `POST /v1/messages/count_tokens`, for clients written against Anthropic's SDKs.
 */
import { Hono } from "hono";
import type { InferenceService } from "../src/engine/service.ts";
import { reasoningStart } from "../src/engine/reasoning.ts";
import { argumentsValue, type ToolCallDelta, ToolCallParser } from "../src/engine/tool_calls.ts";
import type { ApiError } from "./errors.ts";
import { parseToolCalls } from "./generation.ts";
import {
  type DoneEvent,
  type JobWriter,
  prepareJob,
  promptTokens,
  respondStream,
  respondWhole,
} from "./job.ts";
import { renderMessages } from "./messages.ts";
import type { ServingState } from "./state.ts";
import { outputPlan } from "./structured.ts";
import { readJsonObject } from "./validate.ts";
import type { ChatMessage } from "../src/engine/chat_template.ts";
import { type AppliedEdit, applyContextEdits } from "./context_edits.ts";
import {
  type CountTokensRequest,
  parseAnthropicRequest,
  parseCountTokensRequest,
} from "./anthropic_request.ts";

/** True for the paths of this API, whose errors take Anthropic's shape. */
export function isAnthropicPath(path: string): boolean {
  return path === "/v1/messages" || path.startsWith("/v1/messages/");
}

/** An error as Anthropic's API answers it: `{"type": "error", "error": {type, message}}`. */
export function anthropicErrorResponse(error: ApiError): Response {
  return Response.json(anthropicErrorBody(error), {
    status: error.status,
    headers: error.headers,
  });
}

function anthropicErrorBody(error: ApiError): object {
  return {
    type: "error",
    error: { type: anthropicErrorType(error.status), message: error.message },
    request_id: null,
  };
}

function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
      return "overloaded_error";
    default:
      return "api_error";
  }
}

/** `POST /messages` and `POST /messages/count_tokens`. */
export function anthropicRoute(state: ServingState): Hono {
  const app = new Hono();

  app.post("/messages", async (c) => {
    const arrived = performance.now();
    const request = parseAnthropicRequest(await readJsonObject(c.req.raw));
    const service = state.requireModel(request.model);
    const { prompt, applied } = editedPrompt(service, request);
    const promptIds = promptTokens(service, prompt, "messages");
    const output = outputPlan(
      state,
      service,
      { ...request, formatField: "output_config.format.schema", toolSchemaField: "input_schema" },
      reasoningStart(service.chatTemplate, prompt),
    );
    const id = `msg_${crypto.randomUUID().replaceAll("-", "")}`;
    // As Anthropic's API does, a max_tokens past the context window is cut to what it holds.
    const room = Math.min(service.contextLength, service.kvCapacity) - promptIds.length;
    const windowLimit = room > 0 && request.maxTokens > room ? room : null;
    const job = prepareJob(state, {
      service,
      request: {
        sampling: request.sampling,
        stop: request.stopSequences,
        maxTokens: windowLimit ?? request.maxTokens,
        logprobs: undefined,
        reasoningBudget: request.reasoningBudget,
      },
      prompts: [promptIds],
      promptField: "messages",
      outputs: [output],
      id,
      arrived,
      clientSignal: c.req.raw.signal,
    });
    const writer = messageWriter(service, {
      id,
      promptTokens: promptIds.length,
      toolCalls: output.toolCalls === true,
      windowLimit,
      omitThinking: request.omitThinking,
      applied,
    });
    return request.stream ? respondStream(c, job, writer) : await respondWhole(c, job, writer);
  });

  app.post("/messages/count_tokens", async (c) => {
    const request = parseCountTokensRequest(await readJsonObject(c.req.raw));
    const service = state.requireModel(request.model);
    const { prompt, applied, original } = editedPrompt(service, request);
    const ids = promptTokens(service, prompt, "messages");
    return c.json({
      input_tokens: ids.length,
      ...(applied.length === 0 ? {} : { context_management: { original_input_tokens: original } }),
    });
  });
  return app;
}

/**
 * The prompt text of a request, its messages after `context_management`'s edits and its tools
 * through the model's chat template; the edits that changed the conversation, and the prompt
 * tokens before them (when some did).
 */
function editedPrompt(
  service: InferenceService,
  request: CountTokensRequest,
): { prompt: string; applied: AppliedEdit[]; original: number } {
  // Edits compare conversations by their prompt tokens: each is rendered and counted once.
  const rendered = new Map<readonly ChatMessage[], { text: string; tokens?: number }>();
  const render = (messages: readonly ChatMessage[]) => {
    let entry = rendered.get(messages);
    if (entry === undefined) {
      const tools = request.toolChoice === "none" ? [] : request.tools;
      const options = {
        variables: request.templateVariables,
        continueFinal: request.continueFinal,
      };
      entry = { text: renderMessages(service, messages, "messages", tools, options) };
      rendered.set(messages, entry);
    }
    return entry;
  };
  const count = (messages: readonly ChatMessage[]) => {
    const entry = render(messages);
    entry.tokens ??= service.encodePrompt(entry.text).length;
    return entry.tokens;
  };
  const { messages, applied } = applyContextEdits(request.messages, request.contextEdits, count);
  return {
    prompt: render(messages).text,
    applied,
    original: applied.length === 0 ? 0 : count(request.messages),
  };
}

/** What a message writer needs to know of its request. */
interface MessagePlan {
  readonly id: string;
  readonly promptTokens: number;
  /** The answer is read for tool calls in the model's format. */
  readonly toolCalls: boolean;
  /** The tokens the context window left for the answer, when fewer than `max_tokens`. */
  readonly windowLimit: number | null;
  /** Thinking blocks come without their text (`thinking.display` "omitted"). */
  readonly omitThinking: boolean;
  /** The context edits that changed the conversation (reported as `context_management`). */
  readonly applied: readonly AppliedEdit[];
}

/** Why the answer ended, in Anthropic's terms. */
function stopOf(
  done: DoneEvent,
  calls: number,
  windowLimit: number | null,
): { stop_reason: string; stop_sequence: string | null } {
  const reason = done.stopString !== null
    ? "stop_sequence"
    : done.finishReason === "length"
    ? windowLimit !== null && done.completionTokens >= windowLimit
      ? "model_context_window_exceeded"
      : "max_tokens"
    : calls > 0
    ? "tool_use"
    : "end_turn";
  return { stop_reason: reason, stop_sequence: done.stopString };
}

/** `usage`: input tokens not read from the prefix cache, those read from it, and output. */
function usageOf(done: DoneEvent): object {
  return {
    input_tokens: done.promptTokens - done.cachedTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: done.cachedTokens,
    output_tokens: done.completionTokens,
    output_tokens_details: { thinking_tokens: done.reasoningTokens },
    service_tier: "standard",
  };
}

/**
 * The events and the whole answer of one message. Its content blocks come in the order the
 * model writes them: a thinking model's reasoning (`thinking`), then text, then, with
 * `toolCalls`, one `tool_use` block per call in the model's format. A block opens with its
 * first text; an answer with nothing in it has no blocks.
 */
function messageWriter(service: InferenceService, plan: MessagePlan): JobWriter {
  const { id, promptTokens, toolCalls, windowLimit, omitThinking, applied } = plan;
  const edits = applied.length === 0 ? {} : { context_management: { applied_edits: applied } };
  const frame = (type: string, payload: object = {}) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`;
  const message = (content: object[], stop: object, usage: object) => ({
    id,
    type: "message",
    role: "assistant",
    model: service.modelId,
    content,
    ...stop,
    stop_details: null,
    container: null,
    usage,
    ...edits,
  });
  /** A `tool_use` block of call `callId` (streamed ones start with an empty input). */
  const toolUse = (callId: string, name: string, input: unknown) => ({
    type: "tool_use",
    id: `toolu_${callId.slice("call_".length)}`,
    name,
    input,
  });

  const parser = toolCalls ? new ToolCallParser(service.toolFamily) : undefined;
  let blocks = 0;
  let open: "thinking" | "text" | "tool_use" | undefined;
  const close = (): string[] => {
    if (open === undefined) return [];
    open = undefined;
    return [frame("content_block_stop", { index: blocks - 1 })];
  };
  const start = (kind: typeof open & string, block: object): string[] => {
    const frames = close();
    open = kind;
    return [...frames, frame("content_block_start", { index: blocks++, content_block: block })];
  };
  const delta = (kind: typeof open & string, block: object, payload: object): string[] => [
    ...(open === kind ? [] : start(kind, block)),
    frame("content_block_delta", { index: blocks - 1, delta: payload }),
  ];
  const thinkingBlock = { type: "thinking", thinking: "", signature: "" };
  const thinkingFrames = (piece: string) =>
    piece === ""
      ? []
      : omitThinking
      ? open === "thinking" ? [] : start("thinking", thinkingBlock)
      : delta("thinking", thinkingBlock, { type: "thinking_delta", thinking: piece });
  const textFrames = (piece: string) =>
    piece === ""
      ? []
      : delta("text", { type: "text", text: "" }, { type: "text_delta", text: piece });
  const callFrames = (deltas: readonly ToolCallDelta[]) =>
    deltas.flatMap((d) => {
      if (d.id !== undefined) return start("tool_use", toolUse(d.id, d.function.name ?? "", {}));
      return open === "tool_use" && d.function.arguments !== ""
        ? [frame("content_block_delta", {
          index: blocks - 1,
          delta: { type: "input_json_delta", partial_json: d.function.arguments },
        })]
        : [];
    });
  const answerFrames = (piece: { content: string; calls: readonly ToolCallDelta[] }) => [
    ...textFrames(piece.content),
    ...callFrames(piece.calls),
  ];

  return {
    opening: () => [
      frame("message_start", {
        message: message([], { stop_reason: null, stop_sequence: null }, {
          input_tokens: promptTokens,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
          output_tokens: 0,
          service_tier: "standard",
        }),
      }),
    ],
    text: (event) => [
      ...thinkingFrames(event.reasoning ?? ""),
      ...(event.text === ""
        ? []
        : parser
        ? answerFrames(parser.push(event.text))
        : textFrames(event.text)),
    ],
    done: (event) => {
      const frames = parser ? answerFrames(parser.flush()) : [];
      frames.push(...close());
      return [
        ...frames,
        frame("message_delta", {
          delta: { ...stopOf(event, parser?.calls.length ?? 0, windowLimit), stop_details: null },
          usage: usageOf(event),
          ...edits,
        }),
        frame("message_stop"),
      ];
    },
    error: (error) => frame("error", anthropicErrorBody(error)),
    whole: ([answer]) => {
      const { text, reasoning, event } = answer!;
      const { content, calls } = toolCalls
        ? parseToolCalls(service, text)
        : { content: text, calls: [] };
      const blocks: object[] = [
        ...(reasoning === ""
          ? []
          : [{ ...thinkingBlock, thinking: omitThinking ? "" : reasoning }]),
        ...(content === "" ? [] : [{ type: "text", text: content }]),
        ...calls.map((c) => toolUse(c.id, c.name, argumentsValue(c.arguments))),
      ];
      return message(blocks, stopOf(event, calls.length, windowLimit), usageOf(event));
    },
  };
}
