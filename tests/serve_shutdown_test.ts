import assert from "node:assert/strict";
import OpenAI from "openai";
import { loadService } from "../src/engine/load_service.ts";
import type { InferenceService } from "../src/engine/service.ts";
import { Child } from "./_child.ts";
import { writeTinySmolLM2Archive } from "./_hub.ts";
import { startServer } from "./_serve_harness.ts";

const CHAT = [{ role: "user", content: "Tell me a long story." }];

/** The tiny random SmolLM2, served in TypeScript: slow enough to be caught mid-answer. */
async function withTinyModel(
  body: (service: InferenceService, archive: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rill_shutdown_" });
  try {
    const archive = await writeTinySmolLM2Archive(dir);
    const loaded = await loadService(archive, { modelId: "tiny" });
    await loaded.weightsReady;
    await body(loaded.service, archive);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function post(url: string, body: object): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "tiny", messages: CHAT, temperature: 0, ...body }),
  });
}

/** The events of a server-sent event stream, read as they are needed. */
class EventReader {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #events: string[] = [];

  constructor(response: Response) {
    this.#reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Events up to the first one `until` accepts (or to the end of the stream). */
  async readUntil(until: (event: string) => boolean): Promise<string[]> {
    const read: string[] = [];
    for (;;) {
      for (let event = this.#events.shift(); event !== undefined; event = this.#events.shift()) {
        read.push(event);
        if (until(event)) return read;
      }
      const { value, done } = await this.#reader.read();
      if (done) return read;
      const parts = (this.#buffer + value).split("\n\n");
      this.#buffer = parts.pop()!;
      this.#events = parts;
    }
  }
}

Deno.test("shutdown ends a running stream with a server_shutting_down event once the grace period is over, and refuses new work with 503", async () => {
  await withTinyModel(async (service) => {
    // One generation at a time, so that a second request waits in the queue.
    await using server = await startServer({ maxBatch: 1 }, service);
    const events = new EventReader(await post(server.url, { max_tokens: 400, stream: true }));
    await events.readUntil((e) => e.includes('"content":"') && !e.includes('"role"'));
    const queued = post(server.url, { max_tokens: 4 });
    while (server.state.queue.waiting === 0) await new Promise((r) => setTimeout(r, 5));

    const stopped = server.state.shutdown(0);
    const refused = await post(server.url, { max_tokens: 4, stream: true });
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get("Retry-After"), "1");
    assert.equal((await refused.json()).error.code, "server_shutting_down");
    const ready = await fetch(`${server.url}/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { status: "stopping" });
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();

    const rest = await events.readUntil(() => false);
    assert.ok(!rest.includes("data: [DONE]"));
    assert.deepEqual(JSON.parse(rest.at(-1)!.slice("data: ".length)), {
      error: {
        message: "The server is shutting down; retry the request",
        type: "server_error",
        param: null,
        code: "server_shutting_down",
      },
    });
    const waited = await queued;
    assert.equal(waited.status, 503);
    assert.equal((await waited.json()).error.code, "server_shutting_down");
    await stopped;
    assert.equal(server.state.queue.running, 0);
    assert.equal(server.state.queue.waiting, 0);
  });
});

Deno.test("shutdown lets a stream that ends within the grace period finish with [DONE], and resolves then", async () => {
  await withTinyModel(async (service) => {
    await using server = await startServer({}, service);
    const events = new EventReader(await post(server.url, { max_tokens: 40, stream: true }));
    await events.readUntil((e) => e.includes('"content":"') && !e.includes('"role"'));
    const started = performance.now();
    const stopped = server.state.shutdown(60_000);
    const rest = await events.readUntil(() => false);
    assert.equal(rest.at(-1), "data: [DONE]");
    assert.match(rest.at(-2)!, /"finish_reason":"length"/);
    await stopped;
    const ms = performance.now() - started;
    console.log(`shutdown resolved ${ms.toFixed(0)} ms after it began (grace 60000 ms)`);
    assert.ok(ms < 30_000, `shutdown waited ${ms} ms`);
  });
});

Deno.test("rill serve on SIGTERM ends the running stream with a final event the OpenAI client reports, then exits 0", async () => {
  await withTinyModel(async (_, archive) => {
    const child = new Child([
      "run",
      "-A",
      "cli/main.ts",
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--shutdown-grace-ms",
      "0",
    ], { MODEL: archive, RILL_MODEL_ID: "tiny" });
    await using _child = child;
    const [, url] = await child.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    await child.waitFor(/rill: ready/);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Tell me a long story." }],
      max_tokens: 400,
      stream: true,
    });
    const { error, signalled } = await child.signalMidStream(stream, "SIGTERM");
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.match(error.message, /The server is shutting down/);
    const status = await child.exited();
    const ms = performance.now() - signalled;
    console.log(`SIGTERM to exit: ${ms.toFixed(0)} ms`);
    assert.equal(status.code, 0, child.log);
    assert.match(child.log, /SIGTERM: not admitting requests; running ones have 0 ms to finish/);
    assert.match(child.log, /ended: The server is shutting down/);
    assert.match(child.log, /rill: stopped/);
  });
});
