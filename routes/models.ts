import { Hono } from "hono";
import type { InferenceService } from "../src/engine/service.ts";
import { unixSeconds } from "./job.ts";
import type { ServingState } from "./state.ts";

/**
 * `GET /models` and `GET /models/:id`: the one served model, with its context length (prompt
 * plus completion tokens); `:id` may also be one of its aliases. Each model and the list carry
 * the fields of both OpenAI's and Anthropic's shapes.
 */
export function modelsRoute(state: ServingState): Hono {
  const app = new Hono();
  const created = unixSeconds();
  const describe = (service: InferenceService) => ({
    id: service.modelId,
    object: "model",
    created,
    owned_by: "rill",
    context_length: service.contextLength,
    max_model_len: service.contextLength,
    type: "model",
    display_name: service.modelId,
    created_at: new Date(created * 1000).toISOString(),
  });
  app.get("/models", (c) => {
    const { modelId } = state.requireService();
    return c.json({
      object: "list",
      data: [describe(state.requireService())],
      has_more: false,
      first_id: modelId,
      last_id: modelId,
    });
  });
  app.get("/models/:id{.+}", (c) => c.json(describe(state.requireModel(c.req.param("id")))));
  return app;
}
