/**
 * Ollama's API as its own client (the `ollama` npm package) meets it, over the real HTTP
 * server: chat and generate, whole and streamed as lines of JSON, options, context, loading,
 * thinking models, formats and tools, logprobs, embeddings, the model's description, and errors
 * in Ollama's shape.
 */
import assert from "node:assert/strict";
import { type ChatRequest, Ollama } from "ollama";
import type OpenAI from "openai";
import denoJson from "../deno.json" with { type: "json" };
import { validateWeather, WEATHER } from "./_weather.ts";
import { metricValue, startServer, storiesService, type TestServer } from "./_serve_harness.ts";
import { loadTinySmolLM2, smolLM2Service, SWITCHED_TEMPLATE } from "./_smollm2.ts";

function ollama(server: TestServer, headers: Record<string, string> = {}): Ollama {
  return new Ollama({ host: server.url, headers });
}

const STORY = [{ role: "user", content: "Tell me a story about a cat." }];
const GREEDY = { temperature: 0, num_predict: 16 };

/** The status and message a client call was refused with. */
async function refusal(call: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await call;
  } catch (error) {
    const e = error as { status_code: number; error: string };
    return { status: e.status_code, message: e.error };
  }
  throw new Error("the call succeeded");
}

Deno.test("ollama chat: the greedy answer is chat completions', whole and streamed as lines of JSON, with Ollama's counts", async () => {
  await using server = await startServer();
  const client = ollama(server);
  const whole = await client.chat({ model: "stories260K", messages: STORY, options: GREEDY });
  const chat = await server.client().chat.completions.create({
    model: "stories260K",
    messages: STORY as OpenAI.ChatCompletionMessageParam[],
    max_tokens: 16,
    temperature: 0,
  });
  assert.equal(whole.model, "stories260K");
  assert.equal(whole.message.role, "assistant");
  assert.equal(whole.message.content, chat.choices[0]!.message.content);
  assert.equal(whole.done, true);
  assert.equal(whole.done_reason, "length");
  assert.equal(whole.eval_count, 16);
  assert.equal(whole.prompt_eval_count, chat.usage!.prompt_tokens);
  assert.ok(whole.total_duration >= whole.prompt_eval_duration + whole.eval_duration - 1e6);
  assert.ok(whole.eval_duration > 0 && whole.prompt_eval_duration > 0);
  assert.ok(!Number.isNaN(Date.parse(whole.created_at as unknown as string)));

  // The model may be named with Ollama's default tag.
  let text = "";
  const parts = [];
  const stream = await client.chat({
    model: "stories260K:latest",
    messages: STORY,
    options: GREEDY,
    stream: true,
  });
  for await (const part of stream) {
    parts.push(part);
    text += part.message.content;
  }
  assert.equal(text, whole.message.content);
  assert.ok(parts.length > 2);
  assert.ok(parts.slice(0, -1).every((p) => !p.done));
  const last = parts.at(-1)!;
  assert.equal(last.done, true);
  assert.equal(last.done_reason, "length");
  assert.equal(last.eval_count, 16);

  // On the wire: one JSON object a line.
  const response = await fetch(`${server.url}/api/chat`, {
    method: "POST",
    body: JSON.stringify({ model: "stories260K", messages: STORY, options: GREEDY }),
  });
  assert.equal(response.headers.get("content-type"), "application/x-ndjson");
  const lines = (await response.text()).trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.map((l) => l.message.content).join(""), whole.message.content);
  assert.equal(lines.at(-1).done, true);
});

Deno.test("ollama chat: options sample as asked (Mirostat and typical_p too), stop strings end the answer, a final assistant message is continued", async () => {
  await using server = await startServer();
  const client = ollama(server);
  const seeded = { temperature: 0.9, seed: 7, num_predict: 12 };
  const first = await client.chat({ model: "stories260K", messages: STORY, options: seeded });
  const again = await client.chat({ model: "stories260K", messages: STORY, options: seeded });
  assert.equal(again.message.content, first.message.content);
  const chat = await server.client().chat.completions.create({
    model: "stories260K",
    messages: STORY as OpenAI.ChatCompletionMessageParam[],
    max_tokens: 12,
    temperature: 0.9,
    top_k: 40,
    top_p: 0.9,
    seed: 7,
  } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.equal(first.message.content, chat.choices[0]!.message.content);

  const greedy = await client.chat({ model: "stories260K", messages: STORY, options: GREEDY });
  const cut = greedy.message.content.slice(4, 8);
  const stopped = await client.chat({
    model: "stories260K",
    messages: STORY,
    options: { ...GREEDY, stop: [cut] },
  });
  assert.equal(stopped.done_reason, "stop");
  assert.equal(
    stopped.message.content,
    greedy.message.content.slice(0, greedy.message.content.indexOf(cut)),
  );

  // Mirostat 2 aiming at almost no surprise draws the most likely token, whatever the seed;
  // typical_p keeps the tokens nearest the entropy: almost nothing of it, one, whatever the seed.
  const mirostat = { temperature: 0.8, num_predict: 16, mirostat: 2, mirostat_tau: 0.01 };
  for (const seed of [1, 2]) {
    const steered = await client.chat({
      model: "stories260K",
      messages: STORY,
      options: { ...mirostat, seed },
    });
    assert.equal(steered.message.content, greedy.message.content);
  }
  const typical = await Promise.all([1, 2].map((seed) =>
    client.chat({
      model: "stories260K",
      messages: STORY,
      options: { temperature: 1, top_k: 0, num_predict: 16, typical_p: 1e-9, seed },
    })
  ));
  assert.equal(typical[0]!.message.content, typical[1]!.message.content);
  assert.notEqual(typical[0]!.message.content, greedy.message.content);

  const prefix = greedy.message.content.slice(0, 6);
  const continued = await client.chat({
    model: "stories260K",
    messages: [...STORY, { role: "assistant", content: prefix }],
    options: { temperature: 0, num_predict: 4 },
  });
  const completion = await server.client().chat.completions.create({
    model: "stories260K",
    messages: [...STORY, {
      role: "assistant",
      content: prefix,
    }] as OpenAI.ChatCompletionMessageParam[],
    max_tokens: 4,
    temperature: 0,
    continue_final_message: true,
  } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.equal(continued.message.content, completion.choices[0]!.message.content);
});

Deno.test("ollama generate: templated, raw, and with an earlier answer's context; an empty prompt loads the model", async () => {
  await using server = await startServer();
  const client = ollama(server);
  const service = await storiesService();
  const templated = await client.generate({
    model: "stories260K",
    prompt: STORY[0]!.content,
    options: GREEDY,
  });
  const chat = await client.chat({ model: "stories260K", messages: STORY, options: GREEDY });
  assert.equal(templated.response, chat.message.content);
  assert.equal(templated.done_reason, "length");
  // The context is the prompt's tokens and the answer's.
  assert.equal(templated.context.length, templated.prompt_eval_count + templated.eval_count);
  const rendered = service.renderChat(STORY, [], {});
  assert.deepEqual(
    templated.context.slice(0, templated.prompt_eval_count),
    service.encodePrompt(rendered),
  );

  const raw = await client.generate({
    model: "stories260K",
    prompt: "Once upon a time",
    raw: true,
    options: { temperature: 0, num_predict: 10 },
  });
  const completion = await server.client().completions.create({
    model: "stories260K",
    prompt: "Once upon a time",
    max_tokens: 10,
    temperature: 0,
  });
  assert.equal(raw.response, completion.choices[0]!.text);
  assert.equal(raw.context, undefined);

  // The next turn reads the context ahead of its own templated prompt.
  const next = await client.generate({
    model: "stories260K",
    prompt: "What next?",
    context: templated.context,
    system: "You tell stories.",
    options: { temperature: 0, num_predict: 8 },
  });
  const text = service.tokenizer.decode(templated.context) +
    service.renderChat(
      [{ role: "system", content: "You tell stories." }, {
        role: "user",
        content: "What next?",
      }],
      [],
      {},
    );
  const expected = await client.generate({
    model: "stories260K",
    prompt: text,
    raw: true,
    options: { temperature: 0, num_predict: 8 },
  });
  assert.equal(next.response, expected.response);
  assert.equal(next.prompt_eval_count, expected.prompt_eval_count);

  const streamed = [];
  for await (
    const part of await client.generate({
      model: "stories260K",
      prompt: STORY[0]!.content,
      options: GREEDY,
      stream: true,
    })
  ) streamed.push(part);
  assert.equal(streamed.map((p) => p.response).join(""), templated.response);
  assert.deepEqual(streamed.at(-1)!.context, templated.context);

  const loaded = await client.generate({ model: "stories260K", prompt: "" });
  assert.equal(loaded.done, true);
  assert.equal(loaded.done_reason, "load");
  assert.equal(loaded.response, "");
  const chatLoaded = await client.chat({ model: "stories260K", messages: [] });
  assert.equal(chatLoaded.done_reason, "load");
  assert.deepEqual(chatLoaded.message, { role: "assistant", content: "" });
});

Deno.test("ollama: logprobs of each generated token, whole and streamed", async () => {
  await using server = await startServer();
  const client = ollama(server);
  const request = {
    model: "stories260K",
    messages: STORY,
    options: { temperature: 0, num_predict: 8 },
    logprobs: true,
    top_logprobs: 2,
  };
  const whole = await client.chat(request);
  const entries = whole.logprobs!;
  assert.equal(entries.length, 8);
  assert.equal(entries.map((e) => e.token).join(""), whole.message.content);
  for (const entry of entries) {
    assert.equal(entry.top_logprobs!.length, 2);
    assert.equal(entry.top_logprobs![0]!.token, entry.token);
    assert.ok(entry.logprob <= 0);
  }
  const streamed = [];
  for await (const part of await client.chat({ ...request, stream: true })) {
    streamed.push(...part.logprobs ?? []);
  }
  assert.deepEqual(streamed, entries);
});

Deno.test("ollama: tags, show, ps and version describe the served model", async () => {
  await using server = await startServer();
  const client = ollama(server);
  const service = await storiesService();
  const { models } = await client.list();
  assert.equal(models.length, 1);
  const [listed] = models;
  assert.equal(listed!.name, "stories260K");
  assert.equal(listed!.model, "stories260K");
  assert.equal(listed!.size, service.weightBytes);
  assert.ok(listed!.size > 0);
  assert.equal(listed!.details.format, "nnef");
  const shown = await client.show({ model: "stories260K:latest" });
  assert.equal(shown.template, service.chatTemplate);
  assert.deepEqual(shown.capabilities, ["completion", "tools", "embedding"]);
  // The package types it as a Map; on the wire it is an object.
  const info = shown.model_info as unknown as Record<string, unknown>;
  assert.equal(info["general.architecture"], "nnef");
  assert.equal(info["nnef.context_length"], service.contextLength);
  const running = await client.ps();
  assert.equal(running.models[0]!.name, "stories260K");
  assert.equal(
    (running.models[0] as unknown as { context_length: number }).context_length,
    service.contextLength,
  );
  assert.deepEqual(await client.version(), { version: denoJson.version });
});

Deno.test("ollama: embed gives /v1/embeddings' unit vectors; the older embeddings endpoint the raw vector", async () => {
  await using server = await startServer();
  const client = ollama(server);
  const inputs = ["a cat", "a dog sat"];
  const embedded = await client.embed({ model: "stories260K", input: inputs });
  const openai = await server.client().embeddings.create({ model: "stories260K", input: inputs });
  assert.deepEqual(embedded.embeddings, openai.data.map((d) => d.embedding));
  assert.equal(embedded.prompt_eval_count, openai.usage.prompt_tokens);
  const single = await client.embeddings({ model: "stories260K", prompt: "a cat" });
  const length = Math.hypot(...single.embedding);
  assert.ok(Math.abs(length - 1) > 1e-3, `length ${length}`);
  single.embedding.forEach((x, i) =>
    assert.ok(Math.abs(x / length - embedded.embeddings[0]![i]!) < 1e-6)
  );
});

Deno.test("ollama: errors are Ollama's shape and name what was wrong", async () => {
  await using server = await startServer({ apiKeys: ["sk-test"] });
  const client = ollama(server, { Authorization: "Bearer sk-test" });
  const generate = (extra: Record<string, unknown>) =>
    refusal(client.generate({ model: "stories260K", prompt: "Hi", ...extra } as never));
  const cases: [Record<string, unknown>, number, RegExp][] = [
    [{ model: "llama3.2" }, 404, /'llama3\.2' does not exist/],
    [{ options: { mirostat: 3 } }, 400, /'options\.mirostat' must be between 0 and 2/],
    [{ options: { typical_p: 1.5 } }, 400, /'options\.typical_p' must be between 0 and 1/],
    [{ options: { tfs_z: 0.9 } }, 400, /'options\.tfs_z' is not supported/],
    [{ options: { temperature: "hot" } }, 400, /'options\.temperature' must be a number/],
    [{ options: { num_predict: -3 } }, 400, /'options\.num_predict' must be between -2/],
    [{ options: { stop: 5 } }, 400, /'options\.stop' must be a string or an array of strings/],
    [{ options: { repeat_penalty: 0 } }, 400, /'options\.repeat_penalty' must be greater than 0/],
    [{ images: ["aGk="] }, 400, /'images' is not supported/],
    [{ suffix: "end" }, 400, /cannot fill in the middle/],
    [{ template: "{{ .Prompt }}" }, 400, /Go templates/],
    [{ think: true }, 400, /does not support thinking/],
    [{ think: "very" }, 400, /'think' must be/],
    [{ format: "yaml" }, 400, /'format' must be/],
    [{ raw: true, system: "Be brief" }, 400, /'raw'.*'system'/],
    [{ context: [1, 99999] }, 400, /'context\[1\]' is token 99999/],
    [{ options: { num_predict: 600 } }, 400, /maximum context length is 512/],
    [{ unknown_field: 1 }, 400, /unknown_field/],
  ];
  for (const [extra, status, message] of cases) {
    const got = await generate(extra);
    assert.equal(got.status, status, JSON.stringify(extra));
    assert.match(got.message, message, JSON.stringify(extra));
  }
  // Options older clients send at their defaults, and the server-side ones, pass.
  const defaults = await client.generate({
    model: "stories260K",
    prompt: "Hi",
    options: {
      num_predict: 2,
      mirostat: 0,
      mirostat_tau: 5,
      mirostat_eta: 0.1,
      tfs_z: 1,
      typical_p: 1,
      num_ctx: 2048,
      num_thread: 4,
      use_mlock: false,
      repeat_last_n: 64,
    },
  });
  assert.equal(defaults.eval_count, 2);
  const images = await refusal(client.chat({
    model: "stories260K",
    messages: [{ role: "user", content: "Look", images: ["aGk="] }],
  }));
  assert.deepEqual(images, {
    status: 400,
    message: "'messages[0].images' is not supported: the model reads text",
  });

  // Without the key, and on what Rill does not offer, the body is `{"error": ...}` too.
  for (
    const [path, method, status] of [
      ["/api/tags", "GET", 401],
      ["/api/pull", "POST", 501],
      ["/api/nothing", "GET", 404],
    ] as const
  ) {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: status === 401 ? {} : { Authorization: "Bearer sk-test" },
      ...(method === "POST" ? { body: "{}" } : {}),
    });
    assert.equal(response.status, status, path);
    const body = await response.json();
    assert.deepEqual(Object.keys(body), ["error"], path);
    assert.equal(typeof body.error, "string");
  }
  const pull = await refusal(client.pull({ model: "llama3.2" }));
  assert.equal(pull.status, 501);
  assert.match(pull.message, /does not pull models/);
});

Deno.test("ollama: format gives JSON (any object, or matching a schema); tools and tool results go back through the template", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const client = ollama(server);
  for (const stream of [false, true]) {
    const request = {
      model: "smollm2-tiny",
      messages: [{ role: "user", content: "Weather in Paris, as JSON" }],
      format: WEATHER as unknown as Record<string, unknown>,
      options: { num_predict: 60, seed: 3 },
    };
    let text = "";
    if (stream) {
      for await (const part of await client.chat({ ...request, stream: true })) {
        text += part.message.content;
      }
    } else {
      text = (await client.chat(request)).message.content;
    }
    assert.ok(validateWeather(JSON.parse(text)), text);
  }
  const json = await client.generate({
    model: "smollm2-tiny",
    prompt: "Any JSON",
    format: "json",
    options: { num_predict: 40, seed: 3 },
  });
  assert.equal(json.done_reason, "stop");
  assert.equal(typeof JSON.parse(json.response!), "object");

  const tools = [{
    type: "function",
    function: { name: "get_weather", description: "Current weather", parameters: WEATHER },
  }];
  const ask = [{ role: "user", content: "Weather in Paris?" }];
  const history = [...ask, {
    role: "assistant",
    content: "",
    tool_calls: [{
      function: { name: "get_weather", arguments: { city: "Paris", unit: "celsius" } },
    }],
  }, { role: "tool", content: "18 degrees, sunny", tool_name: "get_weather" }];
  const count = async (messages: unknown[]) =>
    (await client.chat(
      {
        model: "smollm2-tiny",
        messages,
        tools,
        options: { num_predict: 1 },
      } as unknown as ChatRequest & { stream?: false },
    )).prompt_eval_count;
  const asked = await count(ask);
  const answered = await count(history);
  const chat = await server.client().chat.completions.create({
    model: "smollm2-tiny",
    max_tokens: 1,
    tools: tools as OpenAI.ChatCompletionTool[],
    messages: [...ask, {
      role: "assistant",
      content: null,
      tool_calls: [{
        id: "",
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' },
      }],
    }, { role: "tool", content: "18 degrees, sunny", tool_call_id: "" }],
  } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.ok(answered > asked + 10, `${answered} vs ${asked}`);
  assert.equal(answered, chat.usage!.prompt_tokens);
  const shown = await client.show({ model: "smollm2-tiny" });
  assert.ok(shown.capabilities.includes("tools"));
});

Deno.test("ollama: a thinking model's reasoning is message.thinking; think false asks the template for none", async () => {
  const service = await loadTinySmolLM2("thinking", SWITCHED_TEMPLATE);
  await using server = await startServer({}, service);
  const client = ollama(server);
  const messages = [{ role: "user", content: "Why is the sky blue?" }];
  const options = { temperature: 0, num_predict: 12 };
  const chat = await server.client().chat.completions.create({
    model: "thinking",
    max_tokens: 12,
    temperature: 0,
    messages: messages as OpenAI.ChatCompletionMessageParam[],
  });
  const reasoning = (chat.choices[0]!.message as unknown as { reasoning_content: string })
    .reasoning_content;
  assert.ok(reasoning.length > 0);
  for (const think of [{}, { think: true }, { think: "high" as const }]) {
    const whole = await client.chat({ model: "thinking", messages, options, ...think });
    assert.equal(whole.message.thinking, reasoning);
    assert.equal(whole.message.content, chat.choices[0]!.message.content ?? "");
  }
  let thinking = "";
  for await (
    const part of await client.chat({ model: "thinking", messages, options, stream: true })
  ) {
    thinking += part.message.thinking ?? "";
  }
  assert.equal(thinking, reasoning);
  const generated = await client.generate({
    model: "thinking",
    prompt: messages[0]!.content,
    options,
  });
  assert.equal(generated.thinking, reasoning);

  const off = await client.chat({ model: "thinking", messages, options, think: false });
  const offChat = await server.client().chat.completions.create({
    model: "thinking",
    max_tokens: 12,
    temperature: 0,
    messages: messages as OpenAI.ChatCompletionMessageParam[],
    chat_template_kwargs: { enable_thinking: false },
  } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.equal(off.message.thinking, undefined);
  assert.equal(off.message.content, offChat.choices[0]!.message.content);
  assert.deepEqual((await client.show({ model: "thinking" })).capabilities, [
    "completion",
    "tools",
    "thinking",
    "embedding",
  ]);

  // An earlier turn's thinking is written back.
  const count = async (thought: string | undefined) =>
    (await client.chat({
      model: "thinking",
      messages: [...messages, {
        role: "assistant",
        content: "Scattering.",
        ...(thought === undefined ? {} : { thinking: thought }),
      }, {
        role: "user",
        content: "And sunsets?",
      }],
      options: { num_predict: 1 },
    })).prompt_eval_count;
  assert.ok(await count("Light scatters.") > await count(undefined));
});

Deno.test("ollama: a client that aborts its stream cancels the generation and frees its place", async () => {
  await using server = await startServer({ maxBatch: 1 });
  const client = ollama(server);
  // The one batch place is held: the stream's answer waits in the queue, its headers sent.
  const holder = server.state.queue.admit();
  await holder.ready;
  const stream = await client.chat({
    model: "stories260K",
    messages: STORY,
    options: GREEDY,
    stream: true,
  });
  assert.equal(server.state.queue.waiting, 1);
  stream.abort();
  const deadline = Date.now() + 5000;
  while (
    server.state.queue.waiting > 0 ||
    await metricValue(server.url, "rill_cancellations_total") < 1
  ) {
    assert.ok(Date.now() < deadline, "the aborted request stayed in the queue");
    await new Promise((r) => setTimeout(r, 5));
  }
  holder.release();
  const after = await client.chat({ model: "stories260K", messages: STORY, options: GREEDY });
  assert.equal(after.eval_count, 16);
});

Deno.test("ollama: truncate true drops a chat's oldest turns until it fits; without it, a 400", async () => {
  await using server = await startServer();
  const client = ollama(server);
  const messages = [{ role: "system", content: "Tell stories." }];
  for (let t = 0; t < 40; t++) {
    messages.push(
      { role: "user", content: `Turn ${t}: tell me about the little dog and the red ball.` },
      { role: "assistant", content: `Once the little dog found a red ball in the park ${t}.` },
    );
  }
  messages.push({ role: "user", content: "And then?" });
  const options = { temperature: 0, num_predict: 16 };
  const refused = await refusal(client.chat({ model: "stories260K", messages, options }));
  assert.equal(refused.status, 400);
  assert.match(refused.message, /maximum context length is 512 tokens/);
  // The package's types predate Ollama's `truncate`.
  const fitted = await client.chat(
    { model: "stories260K", messages, options, truncate: true } as ChatRequest & { stream?: false },
  );
  assert.equal(fitted.eval_count, 16);
  assert.ok(fitted.prompt_eval_count <= 512 - 16, `${fitted.prompt_eval_count}`);
  // Within a turn of the limit: no more was dropped than it took.
  assert.ok(fitted.prompt_eval_count > 512 - 16 - 80, `${fitted.prompt_eval_count}`);
});
