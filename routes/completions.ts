import type { Hono } from "hono";
import { generationRoute } from "./generation.ts";
import type { ServingState } from "./state.ts";
import { fimPromptTokens } from "./job.ts";
import { parseCompletionRequest, promptFieldOf } from "./validate.ts";
import { outputPlan } from "./structured.ts";

/**
 * `POST /completions`: OpenAI (legacy) text completions of one or more prompts (texts or token
 * ids), `n` choices each: choice p * n + j is prompt p's choice j. With `suffix`, each prompt
 * and the suffix ask a code model to fill in the middle.
 */
export function completionsRoute(state: ServingState): Hono {
  return generationRoute(state, "/completions", {
    parse: parseCompletionRequest,
    prompts: (service, { prompts, suffix }) =>
      suffix === undefined
        ? prompts
        : prompts.map((prompt, i) =>
          fimPromptTokens(service, prompt, suffix, promptFieldOf("prompt", prompts.length, i))
        ),
    output: outputPlan,
    promptField: "prompt",
    idPrefix: "cmpl",
    shape: {
      chunkObject: "text_completion",
      wholeObject: "text_completion",
      opening: null,
      text: (text) => ({ text }),
      finish: { text: "" },
      whole: (text) => ({ text }),
      logprobs: (tokens, offsets, unscored) => ({
        tokens: [...(unscored ? [unscored.token] : []), ...tokens.map((t) => t.token)],
        token_logprobs: [...(unscored ? [null] : []), ...tokens.map((t) => t.logprob)],
        top_logprobs: [
          ...(unscored ? [null] : []),
          ...tokens.map((t) =>
            Object.fromEntries(t.top.map(({ token, logprob }) => [token, logprob]))
          ),
        ],
        text_offset: offsets,
      }),
    },
  });
}
