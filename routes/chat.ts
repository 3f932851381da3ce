import type { Hono } from "hono";
import { generationRoute, logprobEntry } from "./generation.ts";
import type { ServingState } from "./state.ts";
import { outputPlan } from "./structured.ts";
import { parseChatRequest } from "./validate.ts";
import { renderMessages } from "./messages.ts";

/** `POST /chat/completions`: OpenAI chat completions, streamed over SSE or whole. */
export function chatRoute(state: ServingState): Hono {
  return generationRoute(state, "/chat/completions", {
    parse: parseChatRequest,
    prompts: (service, request) => [
      renderMessages(
        service,
        request.messages,
        "messages",
        request.toolChoice === "none" ? [] : request.tools,
        { variables: request.templateVariables, continueFinal: request.continueFinal },
      ),
    ],
    output: outputPlan,
    promptField: "messages",
    splitsReasoning: true,
    idPrefix: "chatcmpl",
    shape: {
      chunkObject: "chat.completion.chunk",
      wholeObject: "chat.completion",
      opening: { delta: { role: "assistant", content: "" } },
      text: (text) => ({ delta: { content: text } }),
      finish: { delta: {} },
      toolCalls: (deltas) => ({ delta: { tool_calls: deltas } }),
      // llama.cpp's and DeepSeek's name, and vLLM's (which clients read is theirs to say).
      reasoning: (text) => ({ delta: { reasoning_content: text, reasoning: text } }),
      whole: (text, calls, reasoning) => ({
        message: {
          role: "assistant",
          content: calls.length > 0 && text === "" ? null : text,
          ...(reasoning ? { reasoning_content: reasoning, reasoning } : {}),
          refusal: null,
          annotations: [],
          ...(calls.length > 0
            ? {
              tool_calls: calls.map((call) => ({
                id: call.id,
                type: "function",
                function: { name: call.name, arguments: call.arguments },
              })),
            }
            : {}),
        },
      }),
      logprobs: (tokens) => ({
        content: tokens.map(logprobEntry),
        refusal: null,
      }),
    },
  });
}
