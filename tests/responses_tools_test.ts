import assert from "node:assert/strict";
import OpenAI from "openai";
import { Ajv } from "ajv";
import { generateObject, generateText, jsonSchema, tool } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { z } from "zod";
import { validateWeather, WEATHER } from "./_weather.ts";
import { startServer } from "./_serve_harness.ts";
import { smolLM2Service } from "./_smollm2.ts";

const ajv = new Ajv({ strict: false });

const TOOLS = [{
  type: "function" as const,
  name: "get_weather",
  description: "Current weather of a city",
  parameters: WEATHER as unknown as Record<string, unknown>,
  strict: false,
}];

Deno.test("responses: a required tool gives function_call items with valid arguments, whole and streamed, and its output goes back in", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const client = server.client();
  const whole = await client.responses.create({
    model: "smollm2-tiny",
    input: "Weather in Paris?",
    tools: TOOLS,
    tool_choice: "required",
    max_output_tokens: 60,
    temperature: 1,
  });
  assert.equal(whole.status, "completed");
  const calls = whole.output.filter((item) => item.type === "function_call");
  assert.ok(calls.length >= 1);
  for (const call of calls) {
    assert.equal(call.name, "get_weather");
    assert.match(call.call_id, /^call_/);
    assert.ok(validateWeather(JSON.parse(call.arguments)), call.arguments);
  }

  const events: string[] = [];
  let args = "";
  let done = "";
  const stream = await client.responses.create({
    model: "smollm2-tiny",
    input: "Weather in Paris?",
    tools: TOOLS,
    tool_choice: { type: "function", name: "get_weather" },
    parallel_tool_calls: false,
    max_output_tokens: 60,
    stream: true,
  });
  let final: typeof whole | undefined;
  for await (const event of stream) {
    events.push(event.type);
    if (event.type === "response.function_call_arguments.delta") args += event.delta;
    if (event.type === "response.function_call_arguments.done") done = event.arguments;
    if (event.type === "response.completed") final = event.response;
  }
  assert.equal(events[0], "response.created");
  assert.ok(!events.includes("response.content_part.added"), "no empty message item");
  const added = events.indexOf("response.output_item.added");
  assert.ok(added > 0 && events.indexOf("response.function_call_arguments.delta") > added);
  assert.equal(events.at(-1), "response.completed");
  assert.equal(args, done);
  assert.ok(validateWeather(JSON.parse(done)));
  const call = final!.output.find((item) => item.type === "function_call")!;
  assert.ok(call.type === "function_call" && call.arguments === done);

  const followUp = await client.responses.create({
    model: "smollm2-tiny",
    previous_response_id: final!.id,
    input: [{ type: "function_call_output", call_id: call.call_id, output: '{"temperature": 21}' }],
    tools: TOOLS,
    tool_choice: "none",
    max_output_tokens: 6,
  });
  assert.ok(followUp.output.every((item) => item.type === "message"));
});

Deno.test("responses: Codex's tools: a namespace's functions are called with their namespace, built-in tools are not offered, outputs may be text parts", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const client = server.client();
  const tools = [
    { type: "web_search", external_web_access: false },
    {
      type: "namespace",
      name: "weather_v1",
      description: "Weather tools",
      tools: [{ type: "function", name: "get_weather", parameters: WEATHER, strict: false }],
    },
  ] as unknown as OpenAI.Responses.Tool[];
  const request = {
    model: "smollm2-tiny",
    input: "Weather in Paris?",
    tools,
    tool_choice: "required" as const,
    max_output_tokens: 60,
  };
  const whole = await client.responses.create(request);
  const calls = whole.output.filter((item) => item.type === "function_call");
  assert.ok(calls.length >= 1, JSON.stringify(whole.output));
  for (const call of calls) {
    assert.deepEqual([call.name, call.namespace], ["get_weather", "weather_v1"]);
    assert.ok(validateWeather(JSON.parse(call.arguments)), call.arguments);
  }
  const streamed = await client.responses.stream(request).finalResponse();
  const call = streamed.output.find((item) => item.type === "function_call")!;
  assert.ok(call.type === "function_call" && call.namespace === "weather_v1");

  // The call and its output (as text parts) go back, with the namespace, into the template.
  const back = (extra: object[]) =>
    client.responses.create({
      model: "smollm2-tiny",
      tools,
      tool_choice: "none",
      max_output_tokens: 1,
      input: [{ role: "user", content: "Weather in Paris?" }, ...extra],
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
  const answered = await back([
    {
      type: "function_call",
      call_id: call.call_id,
      name: call.name,
      namespace: call.namespace,
      arguments: call.arguments,
    },
    {
      type: "function_call_output",
      call_id: call.call_id,
      output: [{ type: "input_text", text: '{"temperature": 21}' }],
    },
  ]);
  const plain = await back([
    {
      type: "function_call",
      call_id: call.call_id,
      name: "weather_v1.get_weather",
      arguments: call.arguments,
    },
    { type: "function_call_output", call_id: call.call_id, output: '{"temperature": 21}' },
  ]);
  assert.equal(answered.usage!.input_tokens, plain.usage!.input_tokens);
  // web_search is not in the prompt: the same request without it reads as many tokens.
  const once = { ...request, tool_choice: "auto" as const, max_output_tokens: 1 };
  const withoutSearch = await client.responses.create({ ...once, tools: tools.slice(1) });
  assert.equal(
    withoutSearch.usage!.input_tokens,
    (await client.responses.create(once)).usage!.input_tokens,
  );
  const custom = await client.responses.create({
    ...request,
    tools: [{ type: "custom", name: "apply_patch" }] as unknown as OpenAI.Responses.Tool[],
  }).catch((e: unknown) => e);
  assert.ok(
    custom instanceof OpenAI.BadRequestError && custom.param === "tools[0].type",
    String(custom),
  );
});

Deno.test("responses: text.format json_schema gives text that validates", async () => {
  await using server = await startServer();
  const schema = {
    type: "object",
    properties: {
      title: { type: "string", maxLength: 30 },
      stars: { type: "integer", minimum: 1, maximum: 5 },
    },
    required: ["title", "stars"],
    additionalProperties: false,
  };
  const validate = ajv.compile(schema);
  for (const temperature of [0.7, 1.3]) {
    const response = await server.client().responses.create({
      model: "stories260K",
      input: "Review a book.",
      text: { format: { type: "json_schema", name: "review", schema, strict: true } },
      max_output_tokens: 80,
      temperature,
    });
    assert.equal(response.status, "completed");
    assert.deepEqual(response.text?.format, {
      type: "json_schema",
      name: "review",
      schema,
      strict: true,
    });
    assert.ok(validate(JSON.parse(response.output_text)), response.output_text);
  }
});

Deno.test("the AI SDK's default OpenAI model (Responses API): a required tool call and generateObject validate", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const openai = createOpenAI({ baseURL: `${server.url}/v1`, apiKey: "none" });
  const result = await generateText({
    model: openai("smollm2-tiny"),
    tools: {
      get_weather: tool({ description: "Current weather", inputSchema: jsonSchema(WEATHER) }),
    },
    toolChoice: "required",
    prompt: "Weather in Paris?",
    maxOutputTokens: 60,
    maxRetries: 0,
  });
  assert.ok(result.toolCalls.length >= 1);
  for (const call of result.toolCalls) assert.ok(validateWeather(call.input));

  const Book = z.object({
    title: z.string().max(30),
    year: z.int().min(1500).max(2030),
    tags: z.array(z.enum(["sf", "poetry"])).max(2),
  });
  const { object } = await generateObject({
    model: openai("smollm2-tiny"),
    schema: Book,
    prompt: "A book, please.",
    maxOutputTokens: 80,
    maxRetries: 0,
  });
  assert.deepEqual(Book.parse(object), object);
});
