/**
 * The OpenAI surface as real clients meet it: model names, every request field honoured or
 * refused, logprobs, context length, fingerprint and request ids; through the real HTTP server
 * and the `openai` SDK.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import {
  ANTHROPIC_COUNT_FIELDS,
  ANTHROPIC_MESSAGES_FIELDS,
  CHAT_FIELDS,
  COMPLETION_FIELDS,
  EMBEDDING_FIELDS,
  LLAMA_CPP_COMPLETION_FIELDS,
  LLAMA_CPP_INFILL_FIELDS,
  OLLAMA_CHAT_FIELDS,
  OLLAMA_EMBED_FIELDS,
  OLLAMA_EMBEDDINGS_FIELDS,
  OLLAMA_GENERATE_FIELDS,
  OLLAMA_OPTIONS,
  RERANK_FIELDS,
  RESPONSE_FIELDS,
  SCORE_FIELDS,
} from "../routes/fields.ts";
import { startServer, storiesService } from "./_serve_harness.ts";

const CHAT = [{ role: "user" as const, content: "Tell me a story about a cat." }];

function rejectsWith(status: number, param: string | null, code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof OpenAI.APIError, String(e));
    assert.equal(e.status, status, e.message);
    assert.equal(e.param, param, e.message);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

Deno.test("an unknown model is a 404 model_not_found; the id, an alias or no model is served", async () => {
  await using server = await startServer({ modelAliases: ["gpt-4o-mini"] });
  const client = server.client();
  for (const stream of [false, true]) {
    await assert.rejects(
      client.chat.completions.create({ model: "gpt-4o", messages: CHAT, max_tokens: 2, stream }),
      (e: unknown) =>
        e instanceof OpenAI.NotFoundError && rejectsWith(404, "model", "model_not_found")(e),
    );
  }
  await assert.rejects(
    client.completions.create({ model: "nope", prompt: "Once", max_tokens: 2 }),
    rejectsWith(404, "model", "model_not_found"),
  );
  await assert.rejects(
    client.models.retrieve("nope"),
    rejectsWith(404, "model", "model_not_found"),
  );
  for (const model of ["stories260K", "gpt-4o-mini"]) {
    const answer = await client.chat.completions.create({ model, messages: CHAT, max_tokens: 2 });
    assert.equal(answer.model, "stories260K");
    assert.equal((await client.models.retrieve(model)).id, "stories260K");
  }
  const bare = await fetch(`${server.url}/v1/completions`, {
    method: "POST",
    body: JSON.stringify({ prompt: "Once", max_tokens: 2 }),
  });
  assert.equal(bare.status, 200);
  assert.equal((await bare.json()).model, "stories260K");
});

Deno.test("refused and unknown fields are 400s naming the field; default values pass", async () => {
  await using server = await startServer();
  const client = server.client();
  const chat = { model: "stories260K", messages: CHAT, max_tokens: 2 };
  const tool = {
    type: "function" as const,
    function: { name: "f", parameters: { type: "object", properties: {} } },
  };
  await assert.rejects(
    client.chat.completions.create({ ...chat, functions: [tool.function] }),
    rejectsWith(400, "functions", "unsupported_parameter"),
  );
  await assert.rejects(
    client.chat.completions.create({ ...chat, function_call: { name: "f" } }),
    rejectsWith(400, "function_call", "unsupported_parameter"),
  );
  await assert.rejects(
    client.chat.completions.create({ ...chat, audio: { voice: "alloy", format: "mp3" } }),
    rejectsWith(400, "audio", "unsupported_parameter"),
  );
  await assert.rejects(
    client.chat.completions.create({ ...chat, verbosity: "low" }),
    rejectsWith(400, "verbosity", "unsupported_parameter"),
  );
  // stories260K's vocabulary has no fill-in-the-middle tokens.
  await assert.rejects(
    client.completions.create({ model: "stories260K", prompt: "Once", suffix: " end." }),
    rejectsWith(400, "suffix", "model_not_supported"),
  );
  await assert.rejects(
    client.completions.create({ model: "stories260K", prompt: "Once", best_of: 2 }),
    rejectsWith(400, "best_of", "unsupported_parameter"),
  );
  await assert.rejects(
    client.chat.completions.create({ ...chat, top_logprobs: 2 }),
    rejectsWith(400, "top_logprobs", "invalid_value"),
  );
  const unknown = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ ...chat, max_token: 5 }),
  });
  assert.equal(unknown.status, 400);
  assert.deepEqual((await unknown.json()).error, {
    message: "Unrecognized request argument supplied: max_token",
    type: "invalid_request_error",
    param: "max_token",
    code: "unknown_parameter",
  });
  const defaults = await client.chat.completions.create({
    ...chat,
    tools: [],
    tool_choice: "none",
    response_format: { type: "text" },
    n: 1,
    store: false,
    modalities: ["text"],
    verbosity: "medium",
    user: "someone",
    metadata: { run: "1" },
    service_tier: "auto",
    logprobs: false,
  });
  assert.equal(defaults.choices[0]!.logprobs, null);
});

Deno.test("every field of the tables has a row in the README's table of supported fields", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const tables = {
    "POST /v1/chat/completions": CHAT_FIELDS,
    "POST /v1/completions": COMPLETION_FIELDS,
    "POST /v1/responses": RESPONSE_FIELDS,
    "POST /v1/embeddings": EMBEDDING_FIELDS,
    "POST /v1/messages": ANTHROPIC_MESSAGES_FIELDS,
    "POST /v1/messages/count_tokens": ANTHROPIC_COUNT_FIELDS,
    "POST /api/chat": OLLAMA_CHAT_FIELDS,
    "POST /api/generate": OLLAMA_GENERATE_FIELDS,
    "options of POST /api/chat and POST /api/generate": OLLAMA_OPTIONS,
    "POST /api/embed": OLLAMA_EMBED_FIELDS,
    "POST /api/embeddings": OLLAMA_EMBEDDINGS_FIELDS,
    "POST /completion": LLAMA_CPP_COMPLETION_FIELDS,
    "POST /infill": LLAMA_CPP_INFILL_FIELDS,
    "POST /v1/rerank": RERANK_FIELDS,
    "POST /v1/score": SCORE_FIELDS,
  };
  for (const [endpoint, table] of Object.entries(tables)) {
    const at = readme.indexOf(`#### ${endpoint}`);
    assert.ok(at >= 0, `README has no '#### ${endpoint}' table`);
    const section = readme.slice(at, readme.indexOf("\n\n#", at + 1) >>> 0);
    const rows = new Map(
      [...section.matchAll(/^\| `([a-z0-9_]+)` +\| ([a-z]+(?: [a-z]+)?) +\|/gm)].map((
        m,
      ) => [m[1]!, m[2]!]),
    );
    assert.deepEqual(
      [...rows.keys()].sort(),
      Object.keys(table).sort(),
      `${endpoint}: README rows vs code`,
    );
    for (const [field, rule] of Object.entries(table)) {
      assert.equal(rows.get(field), rule.use, `${endpoint} ${field}`);
    }
  }
});

Deno.test("chat logprobs are OpenAI's shape, whole and streamed, one entry per completion token", async () => {
  await using server = await startServer();
  const client = server.client();
  const service = await storiesService();
  const options = {
    model: "stories260K",
    messages: CHAT,
    max_tokens: 12,
    temperature: 0,
    logprobs: true,
    top_logprobs: 3,
  };
  const whole = await client.chat.completions.create(options);
  const content = whole.choices[0]!.logprobs!.content!;
  assert.equal(content.length, whole.usage!.completion_tokens);
  assert.equal(content.map((t) => t.token).join(""), whole.choices[0]!.message.content);
  for (const entry of content) {
    assert.deepEqual(Object.keys(entry), ["token", "logprob", "bytes", "top_logprobs"]);
    assert.deepEqual(entry.bytes, [...new TextEncoder().encode(entry.token)]);
    assert.equal(entry.top_logprobs.length, 3);
    // Greedy picks the most likely token.
    assert.equal(entry.top_logprobs[0]!.token, entry.token);
    assert.equal(entry.top_logprobs[0]!.logprob, entry.logprob);
    assert.ok(entry.logprob <= 0);
  }
  assert.deepEqual(whole.choices[0]!.logprobs!.refusal, null);

  const streamed = [];
  for await (const chunk of await client.chat.completions.create({ ...options, stream: true })) {
    streamed.push(...chunk.choices[0]?.logprobs?.content ?? []);
  }
  assert.deepEqual(streamed, content);
  assert.ok(service.tokenizer.vocabSize > 0);
});

Deno.test("completions logprobs: tokens, token_logprobs, top_logprobs and text offsets after the prompt", async () => {
  await using server = await startServer();
  const client = server.client();
  const prompt = "Once upon a time";
  const completion = await client.completions.create({
    model: "stories260K",
    prompt,
    max_tokens: 8,
    temperature: 0,
    logprobs: 2,
  });
  const { text, logprobs } = completion.choices[0]!;
  assert.equal(logprobs!.tokens!.join(""), text);
  assert.equal(logprobs!.token_logprobs!.length, 8);
  assert.equal(logprobs!.text_offset![0], prompt.length);
  for (let i = 1; i < 8; i++) {
    assert.equal(
      logprobs!.text_offset![i],
      logprobs!.text_offset![i - 1]! + logprobs!.tokens![i - 1]!.length,
    );
  }
  for (const [i, top] of logprobs!.top_logprobs!.entries()) {
    assert.equal(Object.keys(top).length, 2);
    assert.equal(top[logprobs!.tokens![i]!], logprobs!.token_logprobs![i]);
  }
});

Deno.test("a completion prompt of token ids equals the same prompt as text", async () => {
  await using server = await startServer();
  const client = server.client();
  const service = await storiesService();
  const ask = (prompt: string | number[]) =>
    client.completions.create({ model: "stories260K", prompt, max_tokens: 10, temperature: 0 });
  const ids = service.encodePrompt("Once upon a time");
  assert.equal((await ask(ids)).choices[0]!.text, (await ask("Once upon a time")).choices[0]!.text);
  await assert.rejects(ask([1, 99999]), rejectsWith(400, "prompt[1]", "invalid_value"));
});

Deno.test("models report the whole context, answers a fingerprint, every response a request id", async () => {
  await using server = await startServer();
  const client = server.client();
  const service = await storiesService();
  const models = await client.models.list();
  const model = models.data[0] as unknown as { context_length: number };
  assert.equal(model.context_length, 512);
  const a = await client.chat.completions.create({
    model: "stories260K",
    messages: CHAT,
    max_tokens: 2,
  });
  assert.match(a.system_fingerprint!, /^fp_[0-9a-f]{12}$/);
  assert.equal(a.system_fingerprint, service.systemFingerprint);
  assert.match(a._request_id!, /^req_[0-9a-f]{32}$/);
  for await (
    const chunk of await client.completions.create({
      model: "stories260K",
      prompt: "Once",
      max_tokens: 2,
      stream: true,
    })
  ) {
    assert.equal(chunk.system_fingerprint, service.systemFingerprint);
  }
  const error = await fetch(`${server.url}/v1/nope`);
  assert.match(error.headers.get("x-request-id")!, /^req_/);
  await error.body?.cancel();
  // A prompt of 511 tokens leaves room for exactly one more.
  const long = await client.completions.create({
    model: "stories260K",
    prompt: [1, ...new Array(510).fill(300)],
    temperature: 0,
  });
  assert.equal(long.usage!.completion_tokens, 1);
  assert.equal(long.choices[0]!.finish_reason, "length");
});
