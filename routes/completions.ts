import type { Hono } from "hono";
import { generationRoute } from "./generation.ts";
import type { ServingState } from "./state.ts";
import { parseCompletionRequest } from "./validate.ts";

/** `POST /completions`: OpenAI (legacy) text completions of a prompt string. */
export function completionsRoute(state: ServingState): Hono {
  return generationRoute(state, "/completions", {
    parse: parseCompletionRequest,
    prompt: (_service, request) => request.prompt,
    promptField: "prompt",
    idPrefix: "cmpl",
    shape: {
      chunkObject: "text_completion",
      wholeObject: "text_completion",
      opening: null,
      text: (text) => ({ text }),
      finish: { text: "" },
      whole: (text) => ({ text }),
    },
  });
}
