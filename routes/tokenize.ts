import { Hono } from "hono";
import { invalidRequest } from "./errors.ts";
import type { ServingState } from "./state.ts";
import { parseChatRequest, readJsonObject } from "./validate.ts";
import { renderMessages } from "./messages.ts";

/**
 * `POST /tokenize` ({prompt} or {messages}, rendered with the chat template) and
 * `POST /detokenize` ({tokens}).
 */
export function tokenizeRoute(state: ServingState): Hono {
  const app = new Hono();
  app.post("/tokenize", async (c) => {
    const body = await readJsonObject(c.req.raw);
    const service = state.requireService();
    let text: string;
    if (body.messages !== undefined) {
      const { messages, templateVariables, continueFinal } = parseChatRequest(body);
      text = renderMessages(service, messages, "messages", [], {
        variables: templateVariables,
        continueFinal,
      });
    } else if (typeof body.prompt === "string") {
      text = body.prompt;
    } else {
      throw invalidRequest("'prompt' must be a string (or give 'messages')", "prompt");
    }
    const tokens = service.encodePrompt(text);
    return c.json({ tokens, count: tokens.length, max_model_len: service.contextLength });
  });
  app.post("/detokenize", async (c) => {
    const body = await readJsonObject(c.req.raw);
    const service = state.requireService();
    const tokens = body.tokens;
    const vocab = service.tokenizer.vocabSize;
    if (!Array.isArray(tokens)) throw invalidRequest("'tokens' must be an array", "tokens");
    tokens.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw invalidRequest(`'tokens[${i}]' must be a token id below ${vocab}`, `tokens[${i}]`);
      }
    });
    return c.json({ prompt: service.tokenizer.decode(tokens as number[]) });
  });
  return app;
}
