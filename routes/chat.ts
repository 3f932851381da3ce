import type { Hono } from "hono";
import { generationRoute } from "./generation.ts";
import type { ServingState } from "./state.ts";
import { parseChatRequest, renderMessages } from "./validate.ts";

/** `POST /chat/completions`: OpenAI chat completions, streamed over SSE or whole. */
export function chatRoute(state: ServingState): Hono {
  return generationRoute(state, "/chat/completions", {
    parse: parseChatRequest,
    prompt: (service, request) => renderMessages(service, request.messages),
    promptField: "messages",
    idPrefix: "chatcmpl",
    shape: {
      chunkObject: "chat.completion.chunk",
      wholeObject: "chat.completion",
      opening: { delta: { role: "assistant", content: "" } },
      text: (text) => ({ delta: { content: text } }),
      finish: { delta: {} },
      whole: (text) => ({
        message: { role: "assistant", content: text, refusal: null, annotations: [] },
      }),
      logprobs: (tokens) => ({
        content: tokens.map((t) => ({
          token: t.token,
          logprob: t.logprob,
          bytes: t.bytes,
          top_logprobs: t.top.map(({ token, logprob, bytes }) => ({ token, logprob, bytes })),
        })),
        refusal: null,
      }),
    },
  });
}
