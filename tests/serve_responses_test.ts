/**
 * `/v1/responses` through the real server, with the `openai` SDK's responses API and the
 * Vercel AI SDK's default OpenAI model (which speaks the Responses API).
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";
import { startServer } from "./_serve_harness.ts";

Deno.test("responses.create: the whole answer equals the chat answer to the same messages", async () => {
  await using server = await startServer();
  const client = server.client();
  const response = await client.responses.create({
    model: "stories260K",
    instructions: "You tell stories.",
    input: "Tell me a story about a cat.",
    max_output_tokens: 16,
    temperature: 0,
  });
  assert.equal(response.object, "response");
  assert.match(response.id, /^resp_/);
  assert.equal(response.model, "stories260K");
  const chat = await client.chat.completions.create({
    model: "stories260K",
    messages: [
      { role: "system", content: "You tell stories." },
      { role: "user", content: "Tell me a story about a cat." },
    ],
    max_tokens: 16,
    temperature: 0,
  });
  assert.equal(response.output_text, chat.choices[0]!.message.content);
  assert.equal(response.usage!.input_tokens, chat.usage!.prompt_tokens);
  assert.equal(response.usage!.output_tokens, chat.usage!.completion_tokens);
  const finish = chat.choices[0]!.finish_reason;
  assert.equal(response.status, finish === "length" ? "incomplete" : "completed");
  if (finish === "length") {
    assert.deepEqual(response.incomplete_details, { reason: "max_output_tokens" });
  }
  const [message] = response.output;
  assert.ok(message?.type === "message");
  assert.equal(message.role, "assistant");
  assert.deepEqual(message.content.map((p) => p.type), ["output_text"]);
});

Deno.test("a streamed response sends OpenAI's events in order and ends with the whole response", async () => {
  await using server = await startServer();
  const client = server.client();
  const stream = await client.responses.create({
    model: "stories260K",
    input: [{ role: "user", content: [{ type: "input_text", text: "Say something." }] }],
    max_output_tokens: 12,
    temperature: 0,
    stream: true,
  });
  const types: string[] = [];
  let deltas = "";
  let last: OpenAI.Responses.Response | undefined;
  let sequence = -1;
  for await (const event of stream) {
    assert.equal(event.sequence_number, sequence + 1);
    sequence = event.sequence_number;
    types.push(event.type);
    if (event.type === "response.output_text.delta") deltas += event.delta;
    if (event.type === "response.completed" || event.type === "response.incomplete") {
      last = event.response;
    }
  }
  const deltaCount = types.filter((t) => t === "response.output_text.delta").length;
  assert.ok(deltaCount > 0);
  assert.deepEqual(types.filter((t) => t !== "response.output_text.delta"), [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    last!.status === "completed" ? "response.completed" : "response.incomplete",
  ]);
  const whole = await client.responses.create({
    model: "stories260K",
    input: "Say something.",
    max_output_tokens: 12,
    temperature: 0,
  });
  assert.equal(deltas, whole.output_text);
  const output = last!.output[0]!;
  assert.ok(output.type === "message" && output.content[0]!.type === "output_text");
  assert.equal(output.content[0]!.text, deltas);

  // The SDK's stream helper assembles the same answer.
  const helper = client.responses.stream({
    model: "stories260K",
    input: "Say something.",
    max_output_tokens: 12,
    temperature: 0,
  });
  assert.equal((await helper.finalResponse()).output_text, whole.output_text);
});

Deno.test("previous_response_id continues the stored conversation; GET and DELETE find it", async () => {
  await using server = await startServer();
  const client = server.client();
  const first = await client.responses.create({
    model: "stories260K",
    input: "Tell me about a dog.",
    max_output_tokens: 8,
    temperature: 0,
  });
  const second = await client.responses.create({
    model: "stories260K",
    input: "And then?",
    previous_response_id: first.id,
    max_output_tokens: 8,
    temperature: 0,
  });
  assert.equal(second.previous_response_id, first.id);
  // The second prompt holds the first exchange: the same as chat with the whole history.
  const chat = await client.chat.completions.create({
    model: "stories260K",
    messages: [
      { role: "user", content: "Tell me about a dog." },
      { role: "assistant", content: first.output_text },
      { role: "user", content: "And then?" },
    ],
    max_tokens: 8,
    temperature: 0,
  });
  assert.equal(second.usage!.input_tokens, chat.usage!.prompt_tokens);
  assert.equal(second.output_text, chat.choices[0]!.message.content);

  assert.equal((await client.responses.retrieve(first.id)).output_text, first.output_text);
  await client.responses.delete(first.id);
  await assert.rejects(client.responses.retrieve(first.id), OpenAI.NotFoundError);
  await assert.rejects(
    client.responses.create({ model: "stories260K", input: "x", previous_response_id: first.id }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "previous_response_id",
  );
  const unstored = await client.responses.create({
    model: "stories260K",
    input: "Hi",
    max_output_tokens: 2,
    store: false,
  });
  await assert.rejects(client.responses.retrieve(unstored.id), OpenAI.NotFoundError);
});

Deno.test("responses: logprobs with include; max_tool_calls and unknown formats refused naming the field", async () => {
  await using server = await startServer();
  const client = server.client();
  const response = await client.responses.create({
    model: "stories260K",
    input: "Say something.",
    max_output_tokens: 6,
    temperature: 0,
    top_logprobs: 2,
    include: ["message.output_text.logprobs"],
  });
  const message = response.output[0]!;
  assert.ok(message.type === "message" && message.content[0]!.type === "output_text");
  const logprobs = message.content[0]!.logprobs!;
  assert.equal(logprobs.length, response.usage!.output_tokens);
  assert.equal(logprobs.map((l) => l.token).join(""), response.output_text);
  for (const l of logprobs) assert.equal(l.top_logprobs.length, 2);

  await assert.rejects(
    client.responses.create({
      model: "stories260K",
      input: "x",
      tools: [{ type: "function", name: "f", parameters: {}, strict: false }],
      max_tool_calls: 2,
    }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "max_tool_calls",
  );
  await assert.rejects(
    client.responses.create({
      model: "stories260K",
      input: "x",
      text: { format: { type: "yaml" } as never },
    }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "text.format.type",
  );
  await assert.rejects(
    client.responses.create({ model: "gpt-4o", input: "x" }),
    (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === "model_not_found",
  );
});

Deno.test("the AI SDK's default OpenAI model (Responses API) generates and streams text", async () => {
  await using server = await startServer();
  const openai = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: "none" });
  const model = openai("stories260K");
  const generated = await generateText({
    model,
    prompt: "Tell me a story about a cat.",
    maxOutputTokens: 16,
    temperature: 0,
    maxRetries: 0,
  });
  const reference = await server.client().responses.create({
    model: "stories260K",
    input: "Tell me a story about a cat.",
    max_output_tokens: 16,
    temperature: 0,
  });
  assert.equal(generated.text, reference.output_text);
  assert.equal(generated.usage.outputTokens, reference.usage!.output_tokens);

  const streamed = streamText({
    model,
    prompt: "Tell me a story about a cat.",
    maxOutputTokens: 16,
    temperature: 0,
    maxRetries: 0,
  });
  let text = "";
  for await (const part of streamed.textStream) text += part;
  assert.equal(text, reference.output_text);
  assert.ok(["stop", "length"].includes(await streamed.finishReason));
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /^rill_requests_total\{route="\/v1\/responses",status="200"\} 3$/m);
});

Deno.test("responses: truncation auto drops the oldest turns until the input fits; disabled refuses it", async () => {
  await using server = await startServer();
  const client = server.client();
  const input: OpenAI.Responses.ResponseInput = [];
  for (let t = 0; t < 40; t++) {
    input.push(
      { role: "user", content: `Turn ${t}: tell me about the little dog and the red ball.` },
      { role: "assistant", content: `Once the little dog found a red ball in the park ${t}.` },
    );
  }
  input.push({ role: "user", content: "And then?" });
  const body = {
    model: "stories260K",
    instructions: "Tell stories.",
    input,
    max_output_tokens: 16,
  };
  await assert.rejects(
    client.responses.create(body),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === "context_length_exceeded",
  );
  const response = await client.responses.create({ ...body, truncation: "auto", temperature: 0 });
  assert.equal(response.truncation, "auto");
  assert.equal(response.incomplete_details?.reason, "max_output_tokens");
  assert.equal(response.usage!.output_tokens, 16);
  assert.ok(response.usage!.input_tokens <= 512 - 16, `${response.usage!.input_tokens}`);
  // It read the most turns that fit: the first of the shorter inputs that is not refused.
  for (let from = 2; from < input.length; from += 2) {
    const shorter = await client.responses.create({
      ...body,
      input: input.slice(from),
      temperature: 0,
    }).catch((e) => e);
    if (shorter instanceof OpenAI.BadRequestError) continue;
    assert.equal(shorter.usage.input_tokens, response.usage!.input_tokens);
    assert.equal(shorter.output_text, response.output_text);
    return;
  }
  assert.fail("every shorter input was refused");
});
