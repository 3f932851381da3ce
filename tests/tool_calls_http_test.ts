import assert from "node:assert/strict";
import { Ajv } from "ajv";
import type OpenAI from "openai";
import { startServer } from "./_serve_harness.ts";
import { loadTinySmolLM2, smolLM2Service } from "./_smollm2.ts";
import { GRANITE_RENAMES, MISTRAL_RENAMES } from "./_hub.ts";
import { MISTRAL_ARGS_TEMPLATE, MISTRAL_TEMPLATE } from "./_mistral.ts";
import { GRANITE_TEMPLATE } from "./_granite.ts";

const ajv = new Ajv({ strict: false });

const TOOLS: OpenAI.Chat.Completions.ChatCompletionFunctionTool[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather of a city",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", maxLength: 24 },
          unit: { enum: ["celsius", "fahrenheit"] },
          days: { type: "integer", minimum: 1, maximum: 7 },
        },
        required: ["city", "unit"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function",
    function: {
      name: "add",
      parameters: {
        type: "object",
        properties: { a: { type: "number" }, b: { type: "number" } },
        required: ["a", "b"],
        additionalProperties: false,
      },
    },
  },
];
const VALIDATORS = new Map(
  TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters!)]),
);
const ASK = [{ role: "user" as const, content: "What is the weather in Paris?" }];

function assertValidCall(call: { function: { name: string; arguments: string } }): void {
  const validate = VALIDATORS.get(call.function.name);
  assert.ok(validate, `unknown tool ${call.function.name}`);
  const args = JSON.parse(call.function.arguments);
  assert.ok(validate(args), `${call.function.arguments}: ${JSON.stringify(validate.errors)}`);
}

Deno.test("tool_choice required: random SmolLM2 answers are calls with valid arguments, whole and streamed", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const client = server.client();
  for (const seed of [1, 2, 3]) {
    const answer = await client.chat.completions.create({
      model: "smollm2-tiny",
      messages: ASK,
      tools: TOOLS,
      tool_choice: "required",
      max_tokens: 60,
      seed,
    });
    const choice = answer.choices[0]!;
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.content, null);
    assert.ok(choice.message.tool_calls!.length >= 1);
    for (const call of choice.message.tool_calls!) {
      assert.equal(call.type, "function");
      assert.match(call.id, /^call_/);
      assertValidCall(call as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall);
    }
  }
  const stream = await client.chat.completions.create({
    model: "smollm2-tiny",
    messages: ASK,
    tools: TOOLS,
    tool_choice: { type: "function", function: { name: "get_weather" } },
    max_tokens: 60,
    seed: 4,
    stream: true,
  });
  const calls: { id: string; function: { name: string; arguments: string } }[] = [];
  let finish: string | null = null;
  let pieces = 0;
  for await (const chunk of stream) {
    for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
      if (delta.id !== undefined) {
        assert.equal(delta.index, calls.length);
        assert.equal(delta.type, "function");
        calls.push({ id: delta.id, function: { name: delta.function!.name!, arguments: "" } });
      } else {
        assert.equal(delta.index, calls.length - 1);
        calls[delta.index]!.function.arguments += delta.function!.arguments!;
        pieces++;
      }
    }
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, "tool_calls");
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.function.name, "get_weather");
  assert.ok(pieces > 1, "the arguments arrive in pieces");
  assertValidCall(calls[0]!);
});

Deno.test("a tool result renders back through the template and the conversation goes on", async () => {
  const service = await smolLM2Service();
  await using server = await startServer({}, service);
  const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
    ...ASK,
    {
      role: "assistant",
      content: null,
      tool_calls: [{
        id: "call_1",
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' },
      }],
    },
    { role: "tool", tool_call_id: "call_1", content: '{"temperature": 21}' },
  ];
  const prompt = service.renderChat(
    messages as never,
    TOOLS.map((t) => ({ ...t.function, parameters: t.function.parameters })),
  );
  assert.match(
    prompt,
    /<tool_call>\[\{"name":"get_weather","arguments":\{"city":"Paris","unit":"celsius"\}\}\]<\/tool_call>/,
  );
  assert.match(prompt, /<tool_response>\n\{"temperature": 21\}\n<\/tool_response>/);
  const answer = await server.client().chat.completions.create({
    model: "smollm2-tiny",
    messages,
    tools: TOOLS,
    tool_choice: "none",
    max_tokens: 8,
    seed: 1,
  });
  assert.equal(answer.choices[0]!.message.tool_calls, undefined);
  assert.ok(["stop", "length"].includes(answer.choices[0]!.finish_reason));
});

Deno.test("n choices each call tools on their own: streamed deltas assemble per choice into the whole answer's calls", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const client = server.client();
  const request = {
    model: "smollm2-tiny",
    messages: ASK,
    tools: TOOLS,
    tool_choice: "required" as const,
    max_tokens: 60,
    seed: 11,
    n: 3,
  };
  const whole = await client.chat.completions.create(request);
  assert.deepEqual(whole.choices.map((c) => c.finish_reason), Array(3).fill("tool_calls"));
  const stream = await client.chat.completions.create({ ...request, stream: true });
  const calls: { name: string; arguments: string }[][] = [[], [], []];
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      for (const delta of choice.delta.tool_calls ?? []) {
        const own = calls[choice.index]!;
        if (delta.id !== undefined) own.push({ name: delta.function!.name!, arguments: "" });
        else own[delta.index]!.arguments += delta.function!.arguments!;
      }
    }
  }
  assert.ok(
    new Set(calls.map((c) => JSON.stringify(c))).size > 1,
    "the seeds differ, so do the calls",
  );
  assert.deepEqual(
    calls,
    whole.choices.map((c) =>
      c.message.tool_calls!.map((t) => {
        const call = t as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
        assertValidCall(call);
        return { name: call.function.name, arguments: call.function.arguments };
      })
    ),
  );
});

/** The id of the call marker in SmolLM2's vocabulary renamed by MISTRAL_RENAMES or GRANITE_RENAMES. */
const MARKER = 11;

type FunctionCall = OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;

/**
 * Asks `model` for calls as users do: `required` (whole), a named function (streamed), and
 * `auto` with the call marker pushed up (a random model does not pick it), the calls then held
 * to the tools' schemas. Checks every call's arguments and each id against `id`; returns the
 * `required` answer's calls.
 */
async function callsOf(client: OpenAI, model: string, id: RegExp): Promise<FunctionCall[]> {
  const answer = await client.chat.completions.create({
    model,
    messages: ASK,
    tools: TOOLS,
    tool_choice: "required",
    max_tokens: 60,
    seed: 5,
  });
  const choice = answer.choices[0]!;
  assert.equal(choice.finish_reason, "tool_calls");
  assert.equal(choice.message.content, null);
  const calls = choice.message.tool_calls as FunctionCall[];
  assert.ok(calls.length >= 1);
  for (const call of calls) {
    assert.match(call.id, id);
    assertValidCall(call);
  }
  const streamed = await client.chat.completions.create({
    model,
    messages: ASK,
    tools: TOOLS,
    tool_choice: { type: "function", function: { name: "add" } },
    max_tokens: 60,
    seed: 6,
    stream: true,
  });
  const got = { id: "", name: "", arguments: "" };
  for await (const chunk of streamed) {
    for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
      got.id ||= delta.id ?? "";
      got.name ||= delta.function?.name ?? "";
      got.arguments += delta.function?.arguments ?? "";
    }
  }
  assert.match(got.id, id);
  assert.equal(got.name, "add");
  assertValidCall({ function: got });
  const auto = await client.chat.completions.create({
    model,
    messages: ASK,
    tools: TOOLS,
    logit_bias: { [MARKER]: 100 },
    max_tokens: 60,
    seed: 7,
  });
  assert.equal(auto.choices[0]!.finish_reason, "tool_calls");
  const autoCalls = (auto.choices[0]!.message.tool_calls ?? []) as FunctionCall[];
  assert.ok(autoCalls.length >= 1);
  for (const call of autoCalls) assertValidCall(call);
  return calls;
}

/** Sends `call` back with its result under `id`; the template must render it. */
async function sendBack(client: OpenAI, model: string, call: FunctionCall, id: string) {
  const next = await client.chat.completions.create({
    model,
    messages: [
      ...ASK,
      { role: "assistant", content: null, tool_calls: [{ ...call, id }] },
      { role: "tool", tool_call_id: id, content: '{"temperature": 21}' },
    ],
    tools: TOOLS,
    max_tokens: 4,
  });
  assert.equal(next.choices.length, 1);
}

Deno.test("a Mistral-template model calls tools in its own format, with ids its template takes back", async () => {
  for (const template of [MISTRAL_TEMPLATE, MISTRAL_ARGS_TEMPLATE]) {
    // SmolLM2's vocabulary with two special tokens named as Mistral's call markers.
    const service = await loadTinySmolLM2("mistral-tiny", template, MISTRAL_RENAMES);
    await using server = await startServer({}, service);
    const client = server.client();
    const calls = await callsOf(client, "mistral-tiny", /^[A-Za-z0-9]{9}$/);
    // The calls go back as sent, and as another server's ids: the template takes both.
    for (const id of [calls[0]!.id, "call_6f2c1a9e0b7d44e1a3c5d7f9"]) {
      await sendBack(client, "mistral-tiny", calls[0]!, id);
    }
  }
});

Deno.test("a Granite-template model calls tools after its <|tool_call|> marker, and takes its calls back", async () => {
  // SmolLM2's vocabulary with a special token named as Granite's call marker.
  const service = await loadTinySmolLM2("granite-tiny", GRANITE_TEMPLATE, GRANITE_RENAMES);
  await using server = await startServer({}, service);
  const client = server.client();
  const calls = await callsOf(client, "granite-tiny", /^call_[0-9a-f]{24}$/);
  await sendBack(client, "granite-tiny", calls[0]!, calls[0]!.id);
});
