import { Hono } from "hono";
import { invalidRequest } from "./errors.ts";
import type { ServingState } from "./state.ts";
import { boolean, parseChatRequest, readJsonObject } from "./validate.ts";
import type { InferenceService } from "../src/engine/service.ts";
import { renderMessages } from "./messages.ts";

/**
 * `POST /tokenize` ({prompt} or {messages}, rendered with the chat template, as vLLM takes
 * them; or llama.cpp's {content}, BOS only with `add_special`, each token's piece with
 * `with_pieces`) and `POST /detokenize` ({tokens}: the text as `prompt` and llama.cpp's
 * `content`).
 */
export function tokenizeRoute(state: ServingState): Hono {
  const app = new Hono();
  app.post("/tokenize", async (c) => {
    const body = await readJsonObject(c.req.raw);
    const service = state.requireService();
    if (body.content !== undefined) return c.json({ tokens: llamaCppTokens(service, body) });
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
    const text = service.tokenizer.decode(tokens as number[]);
    return c.json({ prompt: text, content: text });
  });
  return app;
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/** llama.cpp's tokenization of `content`: ids, or `{id, piece}` (a piece's bytes when not UTF-8). */
function llamaCppTokens(service: InferenceService, body: Record<string, unknown>) {
  const content = body.content;
  if (typeof content !== "string") {
    throw invalidRequest("'content' must be a string", "content", "invalid_type");
  }
  const ids = boolean(body, "add_special")
    ? service.encodePrompt(content)
    : service.tokenizer.encode(content, { addBos: false });
  if (!boolean(body, "with_pieces")) return ids;
  const { tokenizer } = service;
  return ids.map((id) => {
    const bytes = tokenizer.tokenBytes(id);
    if (bytes.length === 0) return { id, piece: tokenizer.piece?.(id) ?? "" };
    try {
      return { id, piece: STRICT_UTF8.decode(bytes) };
    } catch {
      return { id, piece: [...bytes] };
    }
  });
}
