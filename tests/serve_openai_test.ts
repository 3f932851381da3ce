import assert from "node:assert/strict";
import OpenAI from "openai";
import { loadModel } from "../src/graph/load_model.ts";
import { generate } from "../src/engine/generate.ts";
import { metricValue, startServer, STORIES_ARCHIVE, storiesService } from "./_serve_harness.ts";
import { readIo } from "./_stories260k.ts";

const CHAT = [{ role: "user" as const, content: "Tell me a story about a cat." }];

Deno.test("POST /v1/completions greedy text equals the reference continuation", async () => {
  await using server = await startServer();
  const service = await storiesService();
  const { prompt_tokens: prompt, continuation_64: continuation } =
    (await readIo("stories260K_f32.io.json")).greedy;
  assert.deepEqual(service.encodePrompt("Once upon a time"), prompt);
  const eos = continuation.findIndex((id) => service.tokenizer.eos.includes(id));
  const expected = eos < 0 ? continuation.slice(0, 40) : continuation.slice(0, Math.min(40, eos));
  const completion = await server.client().completions.create({
    model: "stories260K",
    prompt: "Once upon a time",
    max_tokens: 40,
    temperature: 0,
  });
  assert.equal(completion.object, "text_completion");
  assert.equal(completion.choices[0]!.text, service.tokenizer.decode(expected));
  assert.deepEqual(completion.usage, {
    prompt_tokens: prompt.length,
    completion_tokens: expected.length,
    total_tokens: prompt.length + expected.length,
    // 5 prompt tokens fill no 16-position KV block: nothing can come from the prefix cache.
    prompt_tokens_details: { cached_tokens: 0 },
    // stories260K does not think, and nothing was predicted.
    completion_tokens_details: {
      reasoning_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  });
  assert.equal(completion.choices[0]!.finish_reason, expected.length === 40 ? "length" : "stop");
});

Deno.test("chat completions: streamed and whole greedy answers agree, with exact chunk shape and usage", async () => {
  await using server = await startServer();
  const client = server.client();
  const whole = await client.chat.completions.create({
    model: "stories260K",
    messages: CHAT,
    max_tokens: 30,
    temperature: 0,
  });
  assert.equal(whole.object, "chat.completion");
  assert.match(whole.id, /^chatcmpl-/);
  const message = whole.choices[0]!.message;
  assert.equal(message.role, "assistant");
  assert.ok(message.content!.length > 0);

  const tokenized = await (await fetch(`${server.url}/tokenize`, {
    method: "POST",
    body: JSON.stringify({ messages: CHAT }),
  })).json();
  assert.equal(whole.usage!.prompt_tokens, tokenized.count);
  assert.equal(
    whole.usage!.total_tokens,
    whole.usage!.prompt_tokens + whole.usage!.completion_tokens,
  );
  assert.ok(whole.usage!.completion_tokens <= 30);
  if (whole.choices[0]!.finish_reason === "length") {
    assert.equal(whole.usage!.completion_tokens, 30);
  }

  const stream = await client.chat.completions.create({
    model: "stories260K",
    messages: CHAT,
    max_tokens: 30,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const ids = new Set(chunks.map((c) => c.id));
  const created = new Set(chunks.map((c) => c.created));
  assert.equal(ids.size, 1);
  assert.equal(created.size, 1);
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
  assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: "assistant", content: "" });
  assert.ok(chunks.slice(1).every((c) => c.choices.every((ch) => ch.delta.role === undefined)));
  const usageChunk = chunks.at(-1)!;
  assert.deepEqual(usageChunk.choices, []);
  const { prompt_tokens_details: cached, ...usage } = usageChunk.usage!;
  const { prompt_tokens_details: _, ...wholeUsage } = whole.usage!;
  assert.deepEqual(usage, wholeUsage);
  // The same prompt again: its full 16-position blocks come from the prefix cache.
  assert.equal(cached!.cached_tokens, Math.floor((usage.prompt_tokens - 1) / 16) * 16);
  const finish = chunks.at(-2)!;
  assert.deepEqual(finish.choices[0]!.delta, {});
  assert.equal(finish.choices[0]!.finish_reason, whole.choices[0]!.finish_reason);
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
  assert.equal(text, message.content);
});

Deno.test("greedy chat text equals the runtime's own generate output", async () => {
  await using server = await startServer();
  const service = await storiesService();
  const tokenized = await (await fetch(`${server.url}/tokenize`, {
    method: "POST",
    body: JSON.stringify({ messages: CHAT }),
  })).json();
  const model = await loadModel(STORIES_ARCHIVE);
  const ids: number[] = [];
  for await (
    const id of generate(model, service.tokenizer, tokenized.tokens, {
      maxTokens: 40,
      sampling: { temperature: 0 },
    })
  ) ids.push(id);
  const answer = await server.client().chat.completions.create({
    model: "stories260K",
    messages: CHAT,
    max_completion_tokens: 40,
    temperature: 0,
  });
  assert.equal(answer.choices[0]!.message.content, service.tokenizer.decode(ids));
  assert.equal(answer.usage!.completion_tokens, ids.length);
});

Deno.test("stop strings cut the text exactly, also when split across tokens", async () => {
  await using server = await startServer();
  const client = server.client();
  const greedy = await client.completions.create({
    model: "stories260K",
    prompt: "Once upon a time",
    max_tokens: 60,
    temperature: 0,
  });
  const full = greedy.choices[0]!.text;
  const service = await storiesService();
  const ids = service.encodePrompt(full).slice(1);
  // A stop string made of the end of one token and the start of the next.
  const pieces = ids.map((id) => service.tokenizer.decode([id]));
  const k = pieces.findIndex((p, i) => i > 3 && p.length >= 3 && (pieces[i + 1]?.length ?? 0) >= 3);
  const before = service.tokenizer.decode(ids.slice(0, k));
  const stop = `${pieces[k]!.slice(-2)}${pieces[k + 1]!.slice(0, 2)}`;
  const at = full.indexOf(stop);
  assert.ok(at >= 0 && at <= before.length + pieces[k]!.length, `${stop} in ${full}`);
  for (const stream of [false, true]) {
    const options = {
      model: "stories260K",
      prompt: "Once upon a time",
      max_tokens: 60,
      temperature: 0,
      stop: ["never-there", stop],
    };
    let text = "";
    let finish: string | null = null;
    if (stream) {
      for await (const chunk of await client.completions.create({ ...options, stream: true })) {
        text += chunk.choices[0]?.text ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
    } else {
      const whole = await client.completions.create(options);
      text = whole.choices[0]!.text;
      finish = whole.choices[0]!.finish_reason;
    }
    assert.equal(text, full.slice(0, at), `stream=${stream}`);
    assert.equal(finish, "stop");
  }
});

Deno.test("the same seed gives the same sampled text", async () => {
  await using server = await startServer();
  const client = server.client();
  const ask = (seed: number) =>
    client.chat.completions.create({
      model: "stories260K",
      messages: CHAT,
      max_tokens: 24,
      temperature: 1,
      top_p: 0.95,
      seed,
      // @ts-expect-error: top_k is an extension the openai types do not list
      top_k: 50,
    }).then((r) => r.choices[0]!.message.content);
  const a = await ask(1234);
  const b = await ask(1234);
  assert.equal(a, b);
  const others = await Promise.all([ask(1), ask(2), ask(3)]);
  assert.ok(others.some((text) => text !== a), "different seeds should differ");
});

Deno.test("auth: a wrong or missing key is 401, health stays open", async () => {
  await using server = await startServer({ apiKeys: ["sk-good"] });
  await assert.rejects(
    server.client("sk-bad").chat.completions.create({
      model: "stories260K",
      messages: CHAT,
      max_tokens: 2,
    }),
    (e: unknown) => {
      assert.ok(e instanceof OpenAI.AuthenticationError);
      assert.equal(e.status, 401);
      assert.equal(e.code, "invalid_api_key");
      return true;
    },
  );
  const bare = await fetch(`${server.url}/v1/models`);
  assert.equal(bare.status, 401);
  await bare.body?.cancel();
  const health = await fetch(`${server.url}/health`);
  assert.equal(health.status, 200);
  await health.body?.cancel();
  const models = await server.client("sk-good").models.list();
  assert.equal(models.data[0]!.id, "stories260K");
  assert.equal(
    (models.data[0] as unknown as { context_length: number }).context_length,
    (await storiesService()).contextLength,
  );
});

Deno.test("bad requests are 400 with the field named, a long prompt is context_length_exceeded", async () => {
  await using server = await startServer();
  const client = server.client();
  await assert.rejects(
    client.chat.completions.create({ model: "stories260K", messages: CHAT, n: 33 }),
    (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.param, "n");
      assert.match(
        e.message,
        /asks for 33 completions \(1 prompt\(s\), n = 33\), more than the 32 this server runs and queues at once/,
      );
      return true;
    },
  );
  await assert.rejects(
    client.chat.completions.create({ model: "stories260K", messages: [] }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "messages",
  );
  const long = "Once upon a time there was a cat. ".repeat(80);
  for (const stream of [false, true]) {
    await assert.rejects(
      client.chat.completions.create({
        model: "stories260K",
        messages: [{ role: "user", content: long }],
        stream,
      }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError, String(e));
        assert.equal(e.code, "context_length_exceeded");
        return true;
      },
    );
  }
  const raw = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    body: '{"messages": [',
  });
  assert.equal(raw.status, 400);
  assert.equal((await raw.json()).error.code, "invalid_json");
});

Deno.test("a full queue answers 429 with Retry-After and the waiting request runs after", async () => {
  await using server = await startServer({ maxQueue: 1, maxBatch: 1, retryAfterSeconds: 2 });
  const client = server.client();
  const holder = server.state.queue.admit();
  await holder.ready;
  const waiting = client.chat.completions.create({
    model: "stories260K",
    messages: CHAT,
    max_tokens: 4,
  });
  while (server.state.queue.waiting === 0) await new Promise((r) => setTimeout(r, 5));
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ messages: CHAT, max_tokens: 4 }),
  });
  assert.equal(response.status, 429);
  assert.equal(response.headers.get("Retry-After"), "2");
  assert.equal((await response.json()).error.code, "rate_limit_exceeded");
  assert.equal(await metricValue(server.url, "rill_queue_depth"), 1);
  holder.release();
  const answer = await waiting;
  assert.ok(answer.choices[0]!.message.content!.length > 0);
});

Deno.test("aborting a stream cancels the generation and the next request runs at once", async () => {
  await using server = await startServer();
  const client = server.client();
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model: "stories260K", messages: CHAT, max_tokens: 480, temperature: 0, stream: true },
    { signal: controller.signal },
  );
  let contentChunks = 0;
  try {
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) contentChunks++;
      if (contentChunks === 1) controller.abort();
    }
  } catch (e) {
    assert.ok(e instanceof Error && /abort/i.test(`${e.name} ${e.message}`), String(e));
  }
  assert.equal(contentChunks, 1);
  const deadline = Date.now() + 5000;
  while (await metricValue(server.url, "rill_cancellations_total") < 1) {
    assert.ok(Date.now() < deadline, "cancellation not recorded");
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(server.state.queue.running, 0);
  assert.ok(await metricValue(server.url, "rill_completion_tokens_total") === 0);
  const started = performance.now();
  const next = await client.chat.completions.create({
    model: "stories260K",
    messages: CHAT,
    max_tokens: 4,
  });
  assert.ok(next.choices[0]!.message.content !== null);
  assert.ok(performance.now() - started < 5000);
  assert.equal(await metricValue(server.url, "rill_cancellations_total"), 1);
});

Deno.test("logit_bias steers sampling and the server cap bounds an unlimited request", async () => {
  await using server = await startServer({ maxTokensCap: 6 });
  const service = await storiesService();
  const client = server.client();
  const forced = service.encodePrompt(" cat").at(-1)!;
  const biased = await client.completions.create({
    model: "stories260K",
    prompt: "Once upon a time",
    temperature: 0,
    logit_bias: { [String(forced)]: 100 },
  });
  assert.equal(biased.choices[0]!.text, service.tokenizer.decode(new Array(6).fill(forced)));
  assert.equal(biased.choices[0]!.finish_reason, "length");
  assert.equal(biased.usage!.completion_tokens, 6);
  await assert.rejects(
    client.completions.create({
      model: "stories260K",
      prompt: "Once upon a time",
      logit_bias: { "100000": 1 },
    }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "logit_bias",
  );
});

Deno.test("tokenize, detokenize and metrics describe the served requests", async () => {
  await using server = await startServer();
  const prompt = (await readIo("stories260K_f32.io.json")).greedy.prompt_tokens;
  const tokenized = await (await fetch(`${server.url}/tokenize`, {
    method: "POST",
    body: JSON.stringify({ prompt: "Once upon a time" }),
  })).json();
  assert.deepEqual(tokenized.tokens, prompt);
  assert.equal(tokenized.count, prompt.length);
  const detokenized = await (await fetch(`${server.url}/detokenize`, {
    method: "POST",
    body: JSON.stringify({ tokens: prompt }),
  })).json();
  assert.equal(detokenized.prompt, "Once upon a time");
  const bad = await fetch(`${server.url}/detokenize`, {
    method: "POST",
    body: JSON.stringify({ tokens: [1, "x"] }),
  });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.param, "tokens[1]");

  await server.client().completions.create({
    model: "stories260K",
    prompt: "Once upon a time",
    max_tokens: 8,
    temperature: 0,
  });
  assert.equal(await metricValue(server.url, "rill_prompt_tokens_total"), prompt.length);
  assert.equal(await metricValue(server.url, "rill_completion_tokens_total"), 8);
  assert.equal(await metricValue(server.url, "rill_time_to_first_token_seconds_count"), 1);
  assert.equal(await metricValue(server.url, "rill_time_per_output_token_seconds_count"), 1);
  assert.equal(await metricValue(server.url, "rill_generation_duration_seconds_count"), 1);
  assert.ok(await metricValue(server.url, "rill_tokens_per_second") > 0);
  assert.equal(await metricValue(server.url, "rill_requests_running"), 0);
  // stories260K's block: 16 positions of 5 layers' k and v, 4 heads of 8 each, in f16.
  const blocks = await metricValue(server.url, "rill_kv_blocks_used") +
    await metricValue(server.url, "rill_kv_blocks_free");
  assert.ok(blocks > 0);
  assert.equal(await metricValue(server.url, "rill_kv_pool_bytes"), blocks * 16 * 5 * 2 * 32 * 2);
  const text = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(text, /^rill_requests_total\{route="\/v1\/completions",status="200"\} 1$/m);
  assert.match(text, /^rill_requests_total\{route="\/detokenize",status="400"\} 1$/m);
});

Deno.test("a prompt far over the context is refused without tokenizing it, and /health answers meanwhile", async () => {
  await using server = await startServer();
  const service = await storiesService();
  // 3.5 MB of text (under the 4 MB body limit): millions of tokens for this vocabulary.
  const huge = "The little cat ran to the tree and saw a bird. ".repeat(75_000);
  let tokenized = 0;
  const encode = service.encodePrompt.bind(service);
  service.encodePrompt = (text: string) => {
    tokenized += text.length;
    return encode(text);
  };
  try {
    const health = (async () => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        await (await fetch(`${server.url}/health`)).body?.cancel();
        times.push(performance.now() - t);
      }
      return times;
    })();
    await assert.rejects(
      server.client().completions.create({ model: "stories260K", prompt: huge, max_tokens: 4 }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError, String(e));
        assert.equal(e.code, "context_length_exceeded");
        assert.match(e.message, /at least \d+ tokens/);
        return true;
      },
    );
    await health;
    assert.equal(tokenized, 0, "the huge prompt was tokenized");
  } finally {
    service.encodePrompt = encode;
  }
});
