import { Hono } from "hono";
import { ApiError } from "./errors.ts";
import { unixSeconds } from "./generation.ts";
import type { ServingState } from "./state.ts";

/** `GET /models` and `GET /models/:id`: the one served model, with its context length. */
export function modelsRoute(state: ServingState): Hono {
  const app = new Hono();
  const created = unixSeconds();
  const describe = () => {
    const service = state.requireService();
    return {
      id: service.modelId,
      object: "model",
      created,
      owned_by: "rill",
      context_length: service.contextLength,
      max_model_len: service.contextLength,
    };
  };
  app.get("/models", (c) => c.json({ object: "list", data: [describe()] }));
  app.get("/models/:id{.+}", (c) => {
    const model = describe();
    if (c.req.param("id") !== model.id) {
      throw new ApiError(404, `The model '${c.req.param("id")}' does not exist`, {
        param: "model",
        code: "model_not_found",
      });
    }
    return c.json(model);
  });
  return app;
}
