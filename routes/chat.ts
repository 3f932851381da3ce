import type { Hono } from "hono";
import type { FinishReason } from "../src/engine/service.ts";
import { generationRoute, type ResponseShape, unixSeconds, type Usage } from "./generation.ts";
import type { ServingState } from "./state.ts";
import { parseChatRequest, renderMessages } from "./validate.ts";

/** `POST /chat/completions`: OpenAI chat completions, streamed over SSE or whole. */
export function chatRoute(state: ServingState): Hono {
  return generationRoute(state, "/chat/completions", {
    parse: parseChatRequest,
    prompt: (service, request) => renderMessages(service, request.messages),
    promptField: "messages",
    idPrefix: "chatcmpl",
    shape: chatShape,
  });
}

function chatShape(id: string, model: string, includeUsage: boolean): ResponseShape {
  const created = unixSeconds();
  const chunk = (
    delta: object,
    finishReason: FinishReason | null,
  ) => ({
    id,
    object: "chat.completion.chunk",
    created,
    model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
  });
  return {
    opening: () => chunk({ role: "assistant", content: "" }, null),
    text: (text: string) => chunk({ content: text }, null),
    finish: (reason: FinishReason) => chunk({}, reason),
    usage: (usage: Usage) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices: [],
      usage,
    }),
    whole: (text: string, reason: FinishReason, usage: Usage) => ({
      id,
      object: "chat.completion",
      created,
      model,
      choices: [{
        index: 0,
        message: { role: "assistant", content: text, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: reason,
      }],
      usage,
    }),
  };
}
