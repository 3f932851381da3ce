import { Hono } from "hono";
import type { ChatMessage } from "../src/engine/chat_template.ts";
import type { TokenLogprob } from "../src/engine/sampler.ts";
import type { GenerationEvent, InferenceService } from "../src/engine/service.ts";
import { type ToolCall, type ToolCallDelta, ToolCallParser } from "../src/engine/tool_calls.ts";
import { ApiError, invalidRequest } from "./errors.ts";
import {
  type JobWriter,
  prepareJob,
  promptTokens,
  respondStream,
  respondWhole,
  unixSeconds,
} from "./job.ts";
import { loggedToken, logprobEntry, parseToolCalls } from "./generation.ts";
import { reasoningStart } from "../src/engine/reasoning.ts";
import type { ServingState } from "./state.ts";
import { outputPlan } from "./structured.ts";
import { readJsonObject, type ResponseFormat } from "./validate.ts";
import { renderMessages } from "./messages.ts";
import { answerRoom, fitConversation } from "./truncation.ts";
import type { SamplingOptions } from "../src/engine/sampler.ts";
import { carryReasoning, parseResponseRequest, type ResponseRequest } from "./responses_request.ts";

/** What is kept of a stored response. */
interface StoredResponse {
  /** The response object, as `GET /responses/:id` returns it. */
  readonly body: object;
  /** The conversation so far (instructions excluded), this response's answer included. */
  readonly conversation: readonly ChatMessage[];
}

/** Stored responses kept, the oldest dropped first. */
const STORED_RESPONSES = 256;

/**
 * `POST /responses` (OpenAI's Responses API, text only: created whole or streamed with its
 * event types), `GET /responses/:id` and `DELETE /responses/:id`. Stored responses (`store`,
 * default true) are kept in memory, the last 256, so that `previous_response_id` can continue
 * their conversation.
 */
export function responsesRoute(state: ServingState): Hono {
  const app = new Hono();
  const stored = new Map<string, StoredResponse>();

  app.post("/responses", async (c) => {
    const arrived = performance.now();
    const request = parseResponseRequest(await readJsonObject(c.req.raw));
    const service = state.requireModel(request.model);
    const previous = request.previousResponseId === null
      ? []
      : stored.get(request.previousResponseId)?.conversation;
    if (previous === undefined) {
      throw invalidRequest(
        `Previous response with id '${request.previousResponseId}' not found (responses are kept in memory, the last ${STORED_RESPONSES} stored)`,
        "previous_response_id",
        "previous_response_not_found",
      );
    }
    const conversation = [...previous, ...request.input];
    const messages: ChatMessage[] = request.instructions === null
      ? conversation
      : [{ role: "system", content: request.instructions }, ...conversation];
    const tools = request.toolChoice === "none" ? [] : request.tools;
    const render = (kept: readonly ChatMessage[]) =>
      renderMessages(service, kept, "input", tools, { variables: request.templateVariables });
    const { prompt, ids } = request.truncation === "auto"
      ? fitConversation(
        service,
        messages,
        render,
        answerRoom(service, request.maxOutputTokens, state.config.maxTokensCap),
      )
      : { prompt: render(messages) };
    const promptIds = ids ?? promptTokens(service, prompt, "input");
    const start = reasoningStart(service.chatTemplate, prompt);
    const output = outputPlan(
      state,
      service,
      { ...request, formatField: "text.format.schema", toolSchemaField: "parameters" },
      start,
    );
    const sampling: SamplingOptions = {
      ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
      ...(request.topP === undefined ? {} : { topP: request.topP }),
    };
    const id = `resp_${crypto.randomUUID().replaceAll("-", "")}`;
    const job = prepareJob(state, {
      service,
      request: {
        sampling,
        stop: [],
        maxTokens: request.maxOutputTokens,
        logprobs: request.logprobs,
      },
      prompts: [promptIds],
      promptField: "input",
      maxTokensField: "max_output_tokens",
      outputs: [output],
      id,
      arrived,
      clientSignal: c.req.raw.signal,
    });
    const writer = responseWriter(
      service,
      request,
      id,
      output.toolCalls === true,
      output.reasoning !== undefined,
      (body, answer) => {
        if (!request.store) return;
        stored.set(id, { body, conversation: [...conversation, answer] });
        for (const old of stored.keys()) {
          if (stored.size <= STORED_RESPONSES) break;
          stored.delete(old);
        }
      },
    );
    return request.stream ? respondStream(c, job, writer) : await respondWhole(c, job, writer);
  });

  app.get("/responses/:id", (c) => {
    const response = stored.get(c.req.param("id"));
    if (response === undefined) throw notFound(c.req.param("id"));
    return c.json(response.body);
  });

  app.delete("/responses/:id", (c) => {
    const id = c.req.param("id");
    if (!stored.delete(id)) throw notFound(id);
    return c.json({ id, object: "response.deleted", deleted: true });
  });
  return app;
}

function notFound(id: string): ApiError {
  return new ApiError(404, `No response with id '${id}' is stored`, {
    param: "response_id",
    code: "not_found",
  });
}

/**
 * The events and the whole answer of one response. `store` is called with the final response
 * object and the assistant's message. With `toolCalls`, the output is read for calls in the
 * model's format: each becomes a `function_call` item after the message (which is opened only
 * once there is text for it). A thinking model's (`thinks`) reasoning is a `reasoning` item
 * ahead of them, the message opened once its text comes.
 */
function responseWriter(
  service: InferenceService,
  request: ResponseRequest,
  id: string,
  toolCalls: boolean,
  thinks: boolean,
  store: (body: object, answer: ChatMessage) => void,
): JobWriter {
  const createdAt = unixSeconds();
  const itemId = `msg_${id.slice("resp_".length)}`;
  const reasoningId = `rs_${id.slice("resp_".length)}`;
  let sequence = 0;
  const frame = (type: string, payload: object) =>
    `event: ${type}\ndata: ${
      JSON.stringify({ type, sequence_number: sequence++, ...payload })
    }\n\n`;
  const logprobs = (entries: readonly TokenLogprob[] | undefined) =>
    (entries ?? []).map((entry) => logprobEntry(loggedToken(service.tokenizer, entry)));
  const part = (text: string, entries: readonly TokenLogprob[]) => ({
    type: "output_text",
    text,
    annotations: [],
    logprobs: logprobs(entries),
  });
  const item = (status: string, content: object[]) => ({
    id: itemId,
    type: "message",
    status,
    role: "assistant",
    content,
  });
  const callItem = (call: ToolCall, status: string, itemId: string) => {
    const inNamespace = request.namespaced.get(call.name);
    return {
      id: itemId,
      type: "function_call",
      status,
      call_id: call.id,
      ...(inNamespace === undefined
        ? { name: call.name }
        : { name: inNamespace.name, namespace: inNamespace.namespace }),
      arguments: call.arguments,
    };
  };
  const callItemId = (call: ToolCall) => `fc_${call.id.slice("call_".length)}`;
  const reasoningPart = (text: string) => ({ type: "reasoning_text", text });
  const reasoningItem = (status: string, content: { text: string }[]) => ({
    id: reasoningId,
    type: "reasoning",
    status,
    summary: [],
    content,
    ...(request.carriesReasoning && status === "completed"
      ? { encrypted_content: carryReasoning(content.map((c) => c.text).join("")) }
      : {}),
  });
  const body = (
    status: "in_progress" | "completed" | "incomplete",
    output: object[],
    done?: Extract<GenerationEvent, { type: "done" }>,
  ) => ({
    id,
    object: "response",
    created_at: createdAt,
    status,
    background: false,
    completed_at: status === "completed" ? unixSeconds() : null,
    error: null,
    incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
    instructions: request.instructions,
    max_output_tokens: request.maxOutputTokens ?? null,
    max_tool_calls: null,
    model: service.modelId,
    output,
    parallel_tool_calls: request.parallelToolCalls,
    previous_response_id: request.previousResponseId,
    reasoning: { effort: null, summary: null },
    service_tier: "default",
    store: request.store,
    temperature: request.temperature ?? 1,
    text: { format: textFormat(request.responseFormat) },
    tool_choice: typeof request.toolChoice === "string"
      ? request.toolChoice
      : { type: "function", name: request.toolChoice.name },
    tools: request.tools.map((t) => ({
      type: "function",
      name: t.name,
      description: t.description ?? null,
      parameters: t.parameters,
      strict: false,
    })),
    top_logprobs: request.topLogprobs,
    top_p: request.topP ?? 1,
    truncation: request.truncation,
    usage: done === undefined ? null : {
      input_tokens: done.promptTokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: done.completionTokens,
      output_tokens_details: { reasoning_tokens: done.reasoningTokens },
      total_tokens: done.promptTokens + done.completionTokens,
    },
    user: null,
    metadata: request.metadata,
  });
  const finished = (
    whole: string,
    thought: string,
    done: Extract<GenerationEvent, { type: "done" }>,
    entries: readonly TokenLogprob[],
  ) => {
    const { content, calls } = toolCalls
      ? parseToolCalls(service, whole)
      : { content: whole, calls: [] };
    const status = done.finishReason === "stop" || calls.length > 0 ? "completed" : "incomplete";
    const output: object[] = [];
    if (thought !== "") output.push(reasoningItem("completed", [reasoningPart(thought)]));
    if (!toolCalls || content !== "") output.push(item(status, [part(content, entries)]));
    for (const call of calls) output.push(callItem(call, "completed", callItemId(call)));
    const response = body(status, output, done);
    store(response, {
      role: "assistant",
      content: calls.length > 0 && content === "" ? null : content,
      ...(thought === "" ? {} : { reasoning_content: thought }),
      ...(calls.length > 0
        ? {
          tool_calls: calls.map((c) => ({
            id: c.id,
            type: "function",
            function: { name: c.name, arguments: c.arguments },
          })),
        }
        : {}),
    });
    return response;
  };
  const parser = toolCalls ? new ToolCallParser(service.toolFamily) : undefined;
  let thought: { where: object; text: string; open: boolean } | undefined;
  const reasoningFrames = (piece: string): string[] => {
    if (piece === "") return [];
    const frames: string[] = [];
    if (thought === undefined) {
      const index = next++;
      thought = {
        where: { item_id: reasoningId, output_index: index, content_index: 0 },
        text: "",
        open: true,
      };
      frames.push(
        frame("response.output_item.added", {
          output_index: index,
          item: reasoningItem("in_progress", []),
        }),
        frame("response.content_part.added", { ...thought.where, part: reasoningPart("") }),
      );
    }
    thought.text += piece;
    frames.push(frame("response.reasoning_text.delta", { ...thought.where, delta: piece }));
    return frames;
  };
  const closeReasoning = (): string[] => {
    if (thought === undefined || !thought.open) return [];
    thought.open = false;
    const { where, text } = thought;
    return [
      frame("response.reasoning_text.done", { ...where, text }),
      frame("response.content_part.done", { ...where, part: reasoningPart(text) }),
      frame("response.output_item.done", {
        output_index: (where as { output_index: number }).output_index,
        item: reasoningItem("completed", [reasoningPart(text)]),
      }),
    ];
  };
  /** The frames of generated text: reasoning first, then the answer's text or calls. */
  const answerFrames = (
    event: Extract<GenerationEvent, { type: "text" }>,
    pieceEntries: readonly TokenLogprob[],
  ): string[] => {
    const frames = reasoningFrames(event.reasoning ?? "");
    if (event.text === "") return frames;
    frames.push(...closeReasoning());
    return [
      ...frames,
      ...(parser
        ? parsedFrames(parser.push(event.text), pieceEntries)
        : textFrames(event.text, pieceEntries)),
    ];
  };
  let text = "";
  let whole = "";
  const entries: TokenLogprob[] = [];
  let next = 0; // the output_index of the next item
  let message: { where: object; open: boolean } | undefined;
  let call: { call: ToolCall; itemId: string; index: number } | undefined;
  const openMessage = (): string[] => {
    if (message !== undefined) return [];
    const index = next++;
    message = { where: { item_id: itemId, output_index: index, content_index: 0 }, open: true };
    return [
      frame("response.output_item.added", { output_index: index, item: item("in_progress", []) }),
      frame("response.content_part.added", { ...message.where, part: part("", []) }),
    ];
  };
  const closeMessage = (status: string): string[] => {
    if (message === undefined || !message.open) return [];
    message.open = false;
    const { where } = message;
    return [
      frame("response.output_text.done", { ...where, text, logprobs: logprobs(entries) }),
      frame("response.content_part.done", { ...where, part: part(text, entries) }),
      frame("response.output_item.done", {
        output_index: (where as { output_index: number }).output_index,
        item: item(status, [part(text, entries)]),
      }),
    ];
  };
  const closeCall = (): string[] => {
    if (call === undefined) return [];
    const { index, itemId } = call;
    const done = parser!.calls.find((c) => c.id === call!.call.id) ?? call.call;
    call = undefined;
    return [
      frame("response.function_call_arguments.done", {
        item_id: itemId,
        output_index: index,
        arguments: done.arguments,
      }),
      frame("response.output_item.done", {
        output_index: index,
        item: callItem(done, "completed", itemId),
      }),
    ];
  };
  const textFrames = (piece: string, pieceEntries: readonly TokenLogprob[]): string[] => {
    if (piece === "") return [];
    text += piece;
    return [
      ...openMessage(),
      frame("response.output_text.delta", {
        ...message!.where,
        delta: piece,
        logprobs: logprobs(pieceEntries),
      }),
    ];
  };
  const parsedFrames = (
    piece: {
      content: string;
      calls: readonly ToolCallDelta[];
    },
    pieceEntries: readonly TokenLogprob[],
  ): string[] => {
    const frames = textFrames(piece.content, pieceEntries);
    for (const delta of piece.calls) {
      if (delta.id !== undefined) {
        frames.push(...closeMessage("completed"), ...closeCall());
        const started = { id: delta.id, name: delta.function.name ?? "", arguments: "" };
        call = { call: started, itemId: callItemId(started), index: next++ };
        frames.push(frame("response.output_item.added", {
          output_index: call.index,
          item: callItem(started, "in_progress", call.itemId),
        }));
      } else if (call !== undefined) {
        frames.push(frame("response.function_call_arguments.delta", {
          item_id: call.itemId,
          output_index: call.index,
          delta: delta.function.arguments,
        }));
      }
    }
    return frames;
  };
  return {
    opening: () => [
      frame("response.created", { response: body("in_progress", []) }),
      frame("response.in_progress", { response: body("in_progress", []) }),
      ...(toolCalls || thinks ? [] : openMessage()),
    ],
    text: (event) => {
      whole += event.text;
      entries.push(...event.logprobs ?? []);
      return answerFrames(event, event.logprobs ?? []);
    },
    done: (event) => {
      entries.push(...event.logprobs ?? []);
      const frames = closeReasoning();
      if (parser) frames.push(...parsedFrames(parser.flush(), []));
      // Text or not, a response without calls answers with a message.
      if (!toolCalls) frames.push(...openMessage());
      const response = finished(whole, thought?.text ?? "", event, entries);
      const status = response.status;
      return [
        ...frames,
        ...closeMessage(status),
        ...closeCall(),
        frame(status === "completed" ? "response.completed" : "response.incomplete", {
          response,
        }),
      ];
    },
    error: (error) =>
      frame("error", { code: error.code, message: error.message, param: error.param }),
    whole: ([answer]) => finished(answer!.text, answer!.reasoning, answer!.event, answer!.logprobs),
  };
}

/** `text.format` as a response shows it. */
function textFormat(format: ResponseFormat | undefined): object {
  if (format === undefined) return { type: "text" };
  if (format.type === "json_object") return { type: "json_object" };
  return { type: "json_schema", name: format.name, schema: format.schema, strict: format.strict };
}
