import assert from "node:assert/strict";
import OpenAI from "openai";
import { InferenceService } from "../src/engine/service.ts";
import { cacheLayouts, Session } from "../src/engine/session.ts";
import { KvPool } from "../src/scheduler/kv_pool.ts";
import { BatchScheduler } from "../src/scheduler/step_loop.ts";
import { loadModel } from "../src/graph/load_model.ts";
import { metricValue, startServer, STORIES_ARCHIVE, storiesService } from "./_serve_harness.ts";

const BODY = {
  model: "stories260K",
  messages: [{ role: "user", content: "Say something." }],
  max_tokens: 12,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
};

function post(url: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

Deno.test("a chat stream is framed as data events, ends with the usage chunk and [DONE]", async () => {
  await using server = await startServer();
  const response = await post(server.url, BODY);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("Content-Type"), "text/event-stream");
  assert.equal(response.headers.get("Cache-Control"), "no-cache");
  const text = await response.text();
  assert.ok(text.endsWith("\n\ndata: [DONE]\n\n"), JSON.stringify(text.slice(-80)));
  const events = text.split("\n\n");
  assert.equal(events.pop(), "");
  assert.equal(events.pop(), "data: [DONE]");
  for (const event of events) assert.match(event, /^data: \{.*\}$/s);
  assert.ok(events.every((e) => !e.slice(6).includes("\n")), "one data line per event");
  const chunks = events.map((e) => JSON.parse(e.slice("data: ".length)));
  const [first] = chunks;
  assert.deepEqual(Object.keys(first), [
    "id",
    "object",
    "created",
    "model",
    "system_fingerprint",
    "choices",
    "usage",
  ]);
  assert.deepEqual(first.choices, [{
    index: 0,
    delta: { role: "assistant", content: "" },
    logprobs: null,
    finish_reason: null,
  }]);
  assert.equal(first.usage, null);
  const usage = chunks.at(-1);
  assert.deepEqual(Object.keys(usage), [
    "id",
    "object",
    "created",
    "model",
    "system_fingerprint",
    "choices",
    "usage",
  ]);
  assert.deepEqual(usage.choices, []);
  assert.equal(usage.usage.total_tokens, usage.usage.prompt_tokens + usage.usage.completion_tokens);
  const finish = chunks.at(-2);
  assert.deepEqual(finish.choices[0].delta, {});
  assert.ok(["stop", "length"].includes(finish.choices[0].finish_reason));
  for (const chunk of chunks.slice(1, -2)) {
    assert.deepEqual(Object.keys(chunk.choices[0].delta), ["content"]);
    assert.ok(chunk.choices[0].delta.content.length > 0);
    assert.equal(chunk.choices[0].finish_reason, null);
  }
  for (const chunk of chunks) {
    assert.equal(chunk.id, first.id);
    assert.equal(chunk.created, first.created);
    assert.equal(chunk.object, "chat.completion.chunk");
    assert.equal(chunk.model, "stories260K");
  }
});

Deno.test("a stream without include_usage has no usage chunk and no usage field", async () => {
  await using server = await startServer();
  const { stream_options: _, ...body } = BODY;
  const text = await (await post(server.url, body)).text();
  const events = text.split("\n\n").filter((e) => e !== "");
  assert.equal(events.at(-1), "data: [DONE]");
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
  assert.ok(chunks.every((c) => !("usage" in c) && c.choices.length === 1));
  assert.ok(chunks.at(-1).choices[0].finish_reason !== null);
});

Deno.test("a waiting stream gets : ping comments, and leaving the queue counts as a cancel", async () => {
  // One request at a time, so that a held place makes the next one wait.
  await using server = await startServer({ pingIntervalMs: 5, maxBatch: 1 });
  const holder = server.state.queue.admit();
  await holder.ready;
  const controller = new AbortController();
  const response = await post(server.url, BODY, controller.signal);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes(": ping\n\n")) {
    const { value, done } = await reader.read();
    assert.ok(!done);
    seen += value;
  }
  assert.match(seen, /^data: \{.*"role":"assistant".*\}\n\n(: ping\n\n)+/s);
  assert.equal(server.state.queue.waiting, 1);
  controller.abort();
  await reader.cancel().catch(() => {});
  const deadline = Date.now() + 5000;
  while (
    server.state.queue.waiting > 0 || await metricValue(server.url, "rill_cancellations_total") < 1
  ) {
    assert.ok(Date.now() < deadline, "the aborted request stayed in the queue");
    await new Promise((r) => setTimeout(r, 5));
  }
  holder.release();
  const next = await post(server.url, { ...BODY, stream: false, stream_options: null });
  assert.equal(next.status, 200);
  const body = await next.json();
  assert.equal(body.object, "chat.completion");
  assert.equal(await metricValue(server.url, "rill_cancellations_total"), 1);
});

Deno.test("a non-streaming client that disconnects cancels its generation", async () => {
  await using server = await startServer({ maxBatch: 1 });
  const holder = server.state.queue.admit();
  await holder.ready;
  const controller = new AbortController();
  const pending = post(
    server.url,
    { ...BODY, stream: false, stream_options: null },
    controller.signal,
  );
  while (server.state.queue.waiting === 0) await new Promise((r) => setTimeout(r, 5));
  controller.abort();
  await assert.rejects(pending);
  const deadline = Date.now() + 5000;
  while (server.state.queue.waiting > 0) {
    assert.ok(Date.now() < deadline, "the aborted request stayed in the queue");
    await new Promise((r) => setTimeout(r, 5));
  }
  holder.release();
  assert.equal(await metricValue(server.url, "rill_cancellations_total"), 1);
});

Deno.test("an error after the stream began is sent as an OpenAI error event (an Ollama error line on /api), then the stream ends", async () => {
  const stories = await storiesService();
  const tokenizer = stories.tokenizer;
  const graph = await loadModel(STORIES_ARCHIVE);
  // The real model and scheduler, whose every fourth step fails (as an out-of-memory would).
  const pool = new KvPool(cacheLayouts(graph), { blocks: 64, kernels: null });
  let steps = 0;
  const failing = new InferenceService({
    modelId: "failing",
    tokenizer,
    renderChat: (messages) => stories.renderChat(messages),
    model: new BatchScheduler({
      contextLength: stories.contextLength,
      pool,
      newSequence: () => new Session(graph, { pool }),
      step: (work) => {
        if (++steps % 4 === 0) return Promise.reject(new RangeError("Out of memory in decode"));
        return Session.step(work.map((w) => ({ session: w.seq, ids: w.ids })));
      },
    }),
  });
  await using server = await startServer({}, failing);
  const response = await post(server.url, { ...BODY, model: "failing", max_tokens: 20 });
  assert.equal(response.status, 200);
  const events = (await response.text()).split("\n\n").filter((e) => e !== "");
  assert.ok(!events.includes("data: [DONE]"));
  const last = JSON.parse(events.at(-1)!.slice("data: ".length));
  assert.deepEqual(last, {
    error: {
      message: "Internal error: Out of memory in decode",
      type: "server_error",
      param: null,
      code: "internal_error",
    },
  });
  assert.equal(server.state.queue.running, 0);
  const stream = await server.client().chat.completions.create({
    model: "failing",
    messages: [{ role: "user", content: "Say something." }],
    max_tokens: 20,
    stream: true,
  });
  await assert.rejects(async () => {
    for await (const _ of stream) { /* drain */ }
  }, (e: unknown) => e instanceof OpenAI.APIError && /Out of memory in decode/.test(e.message));

  const ollama = await fetch(`${server.url}/api/generate`, {
    method: "POST",
    body: JSON.stringify({
      model: "failing",
      prompt: "Say something.",
      options: { num_predict: 20 },
    }),
  });
  assert.equal(ollama.status, 200);
  const lines = (await ollama.text()).trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.ok(lines.slice(0, -1).every((l) => l.done === false));
  assert.deepEqual(lines.at(-1), { error: "Internal error: Out of memory in decode" });
  assert.equal(server.state.queue.running, 0);
});

Deno.test("a long prompt is prefilled in steps, with : ping comments sent meanwhile", async () => {
  const stories = await storiesService();
  const prompt = "Once upon a time there was a little cat who liked to play. ".repeat(6);
  const ids = stories.encodePrompt(`user: ${prompt}\nassistant:`);
  assert.ok(ids.length > 100 && ids.length < stories.contextLength - 8, `${ids.length} tokens`);
  await using server = await startServer({ pingIntervalMs: 2 });
  const response = await post(server.url, {
    ...BODY,
    messages: [{ role: "user", content: prompt }],
    max_tokens: 4,
  });
  const text = await response.text();
  const firstContent = text.indexOf('"content":"', text.indexOf("\n\n"));
  const ping = text.indexOf(": ping\n\n");
  assert.ok(ping > 0 && ping < firstContent, text.slice(0, 400));
  assert.ok(text.endsWith("data: [DONE]\n\n"));
});
