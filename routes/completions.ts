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
import { parseCompletionRequest, readJsonObject } from "./validate.ts";

/** `POST /completions`: OpenAI (legacy) text completions of a prompt string. */
export function completionsRoute(state: ServingState): Hono {
  const app = new Hono();
  app.post("/completions", async (c) => {
    const arrived = performance.now();
    const request = parseCompletionRequest(await readJsonObject(c.req.raw));
    const service = state.requireService();
    const promptIds = service.encodePrompt(request.prompt);
    const id = responseId("cmpl");
    const job = prepareJob(state, {
      service,
      request,
      promptIds,
      promptField: "prompt",
      shape: completionShape(id, service.modelId, request.includeUsage),
      id,
      arrived,
      clientSignal: c.req.raw.signal,
    });
    return await respond(c, job);
  });
  return app;
}

function completionShape(id: string, model: string, includeUsage: boolean): ResponseShape {
  const created = unixSeconds();
  const chunk = (text: string, finishReason: FinishReason | null) => ({
    id,
    object: "text_completion",
    created,
    model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }],
    ...(includeUsage ? { usage: null } : {}),
  });
  return {
    opening: () => null,
    text: (text: string) => chunk(text, null),
    finish: (reason: FinishReason) => chunk("", reason),
    usage: (usage: Usage) => ({
      id,
      object: "text_completion",
      created,
      model,
      choices: [],
      usage,
    }),
    whole: (text: string, reason: FinishReason, usage: Usage) => ({
      id,
      object: "text_completion",
      created,
      model,
      choices: [{ index: 0, text, logprobs: null, finish_reason: reason }],
      usage,
    }),
  };
}
