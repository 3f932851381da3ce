import { Hono } from "hono";
import type { FinishReason } from "../src/engine/service.ts";
import {
  prepareJob,
  respond,
  responseId,
  type ResponseShape,
  unixSeconds,
  type Usage,
} from "./generation.ts";
import type { ServingState } from "./state.ts";
import { parseChatRequest, readJsonObject, renderMessages } from "./validate.ts";

/** `POST /chat/completions`: OpenAI chat completions, streamed over SSE or whole. */
export function chatRoute(state: ServingState): Hono {
  const app = new Hono();
  app.post("/chat/completions", async (c) => {
    const arrived = performance.now();
    const request = parseChatRequest(await readJsonObject(c.req.raw));
    const service = state.requireService();
    const promptIds = service.encodePrompt(renderMessages(service, request.messages));
    const id = responseId("chatcmpl");
    const job = prepareJob(state, {
      service,
      request,
      promptIds,
      promptField: "messages",
      shape: chatShape(id, service.modelId, request.includeUsage),
      id,
      arrived,
      clientSignal: c.req.raw.signal,
    });
    return await respond(c, job);
  });
  return app;
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
