import type { Hono } from "hono";
import type { FinishReason } from "../src/engine/service.ts";
import { generationRoute, type ResponseShape, unixSeconds, type Usage } from "./generation.ts";
import type { ServingState } from "./state.ts";
import { parseCompletionRequest } from "./validate.ts";

/** `POST /completions`: OpenAI (legacy) text completions of a prompt string. */
export function completionsRoute(state: ServingState): Hono {
  return generationRoute(state, "/completions", {
    parse: parseCompletionRequest,
    prompt: (_service, request) => request.prompt,
    promptField: "prompt",
    idPrefix: "cmpl",
    shape: completionShape,
  });
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
