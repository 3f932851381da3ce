/** Test helpers: the stories260K service on a real 127.0.0.1 port, and an OpenAI client for it. */
import OpenAI from "openai";
import { createApp, ServingState } from "../routes/mod.ts";
import type { ServingConfig } from "../routes/state.ts";
import type { InferenceService } from "../src/engine/service.ts";
import { loadService } from "../src/engine/load_service.ts";
import { fixture } from "./_stories260k.ts";

/** stories260K exported by torch_to_nnef (f32), without tokenizer or chat template. */
export const STORIES_ARCHIVE = fixture("nnef/stories260K_f32.nnef.tgz");
/** Its llama2.c tokenizer. */
export const STORIES_TOKENIZER = fixture("tok512.bin");

let shared: Promise<InferenceService> | undefined;

/** The stories260K service, loaded once per test process. */
export function storiesService(): Promise<InferenceService> {
  shared ??= loadService(STORIES_ARCHIVE, {
    modelId: "stories260K",
    tokenizer: STORIES_TOKENIZER,
    prefillChunk: 4,
  }).then(async (loaded) => {
    // Nothing of the load may outlive a test (--trace-leaks).
    await loaded.weightsReady;
    return loaded.service;
  });
  return shared;
}

/** A running service on 127.0.0.1. */
export interface TestServer extends AsyncDisposable {
  readonly url: string;
  readonly state: ServingState;
  /** An OpenAI client for this server (no retries). */
  client(apiKey?: string): OpenAI;
  close(): Promise<void>;
}

/** Serves `service` (default: stories260K) with `config` on a free port. */
export async function startServer(
  config: Partial<ServingConfig> = {},
  service?: InferenceService,
): Promise<TestServer> {
  const state = new ServingState(config);
  await state.load(service ?? storiesService());
  const app = createApp(state);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  const url = `http://127.0.0.1:${server.addr.port}`;
  const close = async () => {
    await server.shutdown();
  };
  return {
    url,
    state,
    client: (apiKey = "none") => new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 }),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Reads a metric's value from `/metrics`. */
export async function metricValue(url: string, name: string, apiKey?: string): Promise<number> {
  const response = await fetch(`${url}/metrics`, {
    headers: apiKey ? { Authorization: `Bearer ${apiKey}` } : {},
  });
  const text = await response.text();
  const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (!match) throw new Error(`Metric ${name} not found in:\n${text}`);
  return Number(match[1]);
}
