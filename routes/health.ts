import { Hono } from "hono";
import type { ServingState } from "./state.ts";

/**
 * `GET /health` (the process answers) and `GET /ready` (the model is loaded and the server is
 * not shutting down): constant answers from the state, cheap enough for a platform probe.
 */
export function healthRoute(state: ServingState): Hono {
  const app = new Hono();
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/ready", (c) => {
    if (state.stopping) return c.json({ status: "stopping" }, 503);
    if (state.service) return c.json({ status: "ready", model: state.service.modelId });
    if (state.loadError) {
      return c.json({ status: "failed", error: state.loadError.message }, 503);
    }
    return c.json({ status: "loading" }, 503);
  });
  return app;
}
