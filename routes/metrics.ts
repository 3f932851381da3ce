import { Hono } from "hono";
import type { ServingState } from "./state.ts";

/** `GET /metrics`: Prometheus text exposition. */
export function metricsRoute(state: ServingState): Hono {
  const app = new Hono();
  app.get("/metrics", (c) => {
    c.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(state.metrics.render());
  });
  return app;
}
