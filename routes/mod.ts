import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { anthropicErrorResponse, anthropicRoute, isAnthropicPath } from "./anthropic.ts";
import { bearerAuth } from "./auth.ts";
import { isOllamaPath, ollamaErrorResponse, ollamaRoute } from "./ollama.ts";
import { llamaCppRoute } from "./llama_cpp.ts";
import { rerankRoute } from "./rerank.ts";
import { chatRoute } from "./chat.ts";
import { completionsRoute } from "./completions.ts";
import { ApiError, toApiError } from "./errors.ts";
import { healthRoute } from "./health.ts";
import { metricsRoute } from "./metrics.ts";
import { modelsRoute } from "./models.ts";
import { playgroundRoute } from "./playground.ts";
import { responsesRoute } from "./responses.ts";
import { embeddingsRoute } from "./embeddings.ts";
import type { ServingState } from "./state.ts";
import { tokenizeRoute } from "./tokenize.ts";

export { ServingState } from "./state.ts";
export type { JobTicket, ServingConfig } from "./state.ts";

const METRIC_ROUTES = new Set([
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/responses",
  "/v1/messages",
  "/v1/messages/count_tokens",
  "/v1/embeddings",
  "/v1/rerank",
  "/v1/reranking",
  "/rerank",
  "/reranking",
  "/v1/score",
  "/score",
  "/v1/models",
  "/api/chat",
  "/api/generate",
  "/api/embed",
  "/api/embeddings",
  "/api/tags",
  "/api/show",
  "/api/ps",
  "/api/version",
  "/health",
  "/ready",
  "/completion",
  "/completions",
  "/infill",
  "/props",
  "/slots",
  "/apply-template",
  "/tokenize",
  "/detokenize",
  "/metrics",
]);

/** The HTTP app of {@link createApp}: a handler of requests, as Hono's app gives it. */
export interface App {
  /** Answers a request: what `Deno.serve` takes. */
  fetch(request: Request, ...rest: unknown[]): Response | Promise<Response>;
  /** Answers a request given by path or URL, in process (as in the tests). */
  request(input: string | URL | Request, init?: RequestInit): Response | Promise<Response>;
}

/**
 * The HTTP service: OpenAI-compatible routes under `/v1`, Anthropic's `/v1/messages`,
 * Ollama's API under `/api` and llama.cpp's own (`/completion`, `/infill`, `/props`), plus
 * `/health`, `/ready`, `/metrics`, `/tokenize` and `/detokenize`, with CORS, API keys
 * (`Authorization: Bearer` or `x-api-key`) and errors in each API's shape, and the chat
 * playground at `/`.
 *
 * @example
 * ```ts ignore
 * const state = new ServingState({ apiKeys: ["sk-local"] });
 * const app = createApp(state);
 * Deno.serve(app.fetch);
 * await state.load(loadService("model.nnef.tar", { modelId: "stories" }).then((l) => l.service));
 * ```
 * @param state the loaded (or loading) model, queue, metrics and configuration
 * @returns a Hono app; serve it with `Deno.serve(app.fetch)`
 */
export function createApp(state: ServingState): App {
  const app = new Hono();
  const { config } = state;
  if (config.corsOrigins.length > 0) {
    const origins = [...config.corsOrigins];
    app.use(
      "*",
      cors({
        origin: origins.includes("*") ? "*" : origins,
        // Without a list, the headers a preflight asks for are allowed: SDKs send their own
        // (the openai SDK's x-stainless-*), and which ones changes with their versions.
        allowMethods: ["GET", "POST", "DELETE", "OPTIONS"],
        exposeHeaders: ["Retry-After", "x-request-id"],
        maxAge: 600,
      }),
    );
  }
  app.use("*", async (c, next) => {
    await next();
    c.res.headers.set("x-request-id", `req_${crypto.randomUUID().replaceAll("-", "")}`);
  });
  app.use("*", async (c, next) => {
    await next();
    const route = METRIC_ROUTES.has(c.req.path) ? c.req.path : "other";
    state.metrics.request(route, c.res.status);
  });
  // Before the auth: the page asks for the key itself.
  app.route("/", playgroundRoute());
  app.use("*", bearerAuth(config.apiKeys));
  app.use(
    "*",
    bodyLimit({
      maxSize: config.maxBodyBytes,
      onError: () => {
        throw new ApiError(413, `Request body is larger than ${config.maxBodyBytes} bytes`, {
          code: "request_too_large",
        });
      },
    }),
  );

  app.route("/v1", chatRoute(state));
  app.route("/v1", completionsRoute(state));
  app.route("/v1", responsesRoute(state));
  app.route("/v1", anthropicRoute(state));
  app.route("/v1", embeddingsRoute(state));
  app.route("/v1", modelsRoute(state));
  app.route("/api", ollamaRoute(state));
  app.route("/", healthRoute(state));
  app.route("/", metricsRoute(state));
  app.route("/", tokenizeRoute(state));
  app.route("/", llamaCppRoute(state));
  app.route("/", rerankRoute(state));

  // Anthropic's and Ollama's clients read errors in their own shapes.
  const respond = (path: string, error: ApiError) =>
    isAnthropicPath(path)
      ? anthropicErrorResponse(error)
      : isOllamaPath(path)
      ? ollamaErrorResponse(error)
      : error.toResponse();
  app.notFound((c) =>
    respond(
      c.req.path,
      new ApiError(404, `No route for ${c.req.method} ${c.req.path}`, { code: "not_found" }),
    )
  );
  app.onError((error, c) => {
    const apiError = toApiError(error);
    // A 501 (what is not offered) and a 503 (not ready) are answers, not failures.
    if (apiError.status >= 500 && apiError.status !== 501 && apiError.status !== 503) {
      console.error("rill serve: request failed:", error);
    }
    return respond(c.req.path, apiError);
  });
  return app;
}
