import { Hono } from "hono";
import type { ServingState } from "./state.ts";

/**
 * `GET /health` (the process answers) and `GET /ready` (the model is loaded and the server is
 * not shutting down): constant answers from the state, cheap enough for a platform probe. It
 * also tells how far the download, conversion or load is: `phase`, `bytes_loaded` and
 * `bytes_total` (null while unknown); the weights may still be arriving once it says ready.
 */
export function healthRoute(state: ServingState): Hono {
  const app = new Hono();
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/ready", (c) => {
    if (state.stopping) return c.json({ status: "stopping" }, 503);
    const progress = progressFields(state);
    if (state.ready) {
      return c.json({ status: "ready", model: state.service!.modelId, ...progress });
    }
    if (state.loadError) {
      // Unauthenticated: the reason, which may quote the model's files, stays in the log.
      return c.json({
        status: "failed",
        error: "The model failed to load; the server log says why",
      }, 503);
    }
    return c.json({ status: "loading", ...progress }, 503);
  });
  return app;
}

function progressFields(state: ServingState) {
  const progress = state.progress;
  if (progress === undefined) return {};
  return {
    phase: progress.phase,
    bytes_loaded: progress.doneBytes,
    bytes_total: progress.totalBytes ?? null,
  };
}
