/**
 * Anthropic's Messages API as its own SDK (`@anthropic-ai/sdk`) meets it, over the real HTTP
 * server: whole and streamed messages, stop sequences, prefills, token counts, the prefix
 * cache, errors in Anthropic's shape, tools, structured output and thinking models.
 */
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import type OpenAI from "openai";
import { validateWeather, WEATHER } from "./_weather.ts";
import { startServer, type TestServer } from "./_serve_harness.ts";
import {
  loadTinySmolLM2,
  smolLM2Service,
  SWITCHED_TEMPLATE,
  THINKING_TEMPLATE,
} from "./_smollm2.ts";

/** An Anthropic client for `server` (no retries). */
function anthropic(server: TestServer, apiKey = "none"): Anthropic {
  return new Anthropic({ baseURL: server.url, apiKey, maxRetries: 0 });
}

const STORY = [{ role: "user" as const, content: "Tell me a story about a cat." }];

/** Greedy sampling; Anthropic's SDK no longer types the sampling fields, the API takes them. */
const GREEDY = { temperature: 0 } as Record<string, unknown>;

/** The text blocks of a message, joined. */
function textOf(message: Anthropic.Message): string {
  return message.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join("");
}

Deno.test("messages: the greedy answer is chat completions', whole and streamed, with Anthropic's events and usage", async () => {
  await using server = await startServer();
  const client = anthropic(server);
  const body = { ...GREEDY, model: "stories260K", max_tokens: 16, messages: STORY };
  const whole = await client.messages.create(body as Anthropic.MessageCreateParamsNonStreaming);
  const chat = await server.client().chat.completions.create({
    model: "stories260K",
    messages: STORY,
    max_tokens: 16,
    temperature: 0,
  });
  assert.match(whole.id, /^msg_/);
  assert.equal(whole.type, "message");
  assert.equal(whole.role, "assistant");
  assert.equal(whole.model, "stories260K");
  assert.equal(whole.content.length, 1);
  assert.equal(textOf(whole), chat.choices[0]!.message.content);
  assert.equal(whole.stop_reason, "max_tokens");
  assert.equal(whole.stop_sequence, null);
  assert.equal(whole.usage.output_tokens, 16);
  assert.equal(
    whole.usage.input_tokens + whole.usage.cache_read_input_tokens!,
    chat.usage!.prompt_tokens,
  );
  assert.equal(whole.usage.cache_creation_input_tokens, 0);

  // The raw events, in the order Anthropic sends them.
  const types: string[] = [];
  let text = "";
  const raw = await client.messages.create(
    { ...body, stream: true } as Anthropic.MessageCreateParamsStreaming,
  );
  for await (const event of raw) {
    types.push(event.type);
    if (event.type === "content_block_delta" && event.delta.type === "text_delta") {
      assert.equal(event.index, 0);
      text += event.delta.text;
    }
    if (event.type === "message_delta") {
      assert.equal(event.delta.stop_reason, "max_tokens");
      assert.equal(event.usage.output_tokens, 16);
    }
  }
  assert.equal(text, textOf(whole));
  assert.deepEqual(
    [...new Set(types)],
    [
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ],
  );
  assert.equal(types.filter((t) => t === "content_block_start").length, 1);

  // The SDK's stream helper checks the order and builds the same message.
  const final = await client.messages.stream(body as Anthropic.MessageStreamParams).finalMessage();
  assert.deepEqual(final.content, whole.content);
  assert.equal(final.stop_reason, "max_tokens");
  assert.equal(final.usage.output_tokens, 16);
  assert.equal(
    final.usage.input_tokens + final.usage.cache_read_input_tokens!,
    chat.usage!.prompt_tokens,
  );
});

Deno.test("messages: a stop sequence ends the text before it and is named; system prompts and prefills shape the prompt", async () => {
  await using server = await startServer();
  const client = anthropic(server);
  const base = { ...GREEDY, model: "stories260K", max_tokens: 24 };
  const free = await client.messages.create(
    { ...base, messages: STORY } as Anthropic.MessageCreateParamsNonStreaming,
  );
  const words = textOf(free).trim().split(/\s+/);
  assert.ok(words.length > 3, textOf(free));
  const stop = words[2]!;
  for (const stream of [false, true]) {
    const params = { ...base, messages: STORY, stop_sequences: ["\u{1F600}", stop] };
    const message = stream
      ? await client.messages.stream(params as Anthropic.MessageStreamParams).finalMessage()
      : await client.messages.create(params as Anthropic.MessageCreateParamsNonStreaming);
    assert.equal(message.stop_reason, "stop_sequence");
    assert.equal(message.stop_sequence, stop);
    assert.equal(textOf(message), textOf(free).slice(0, textOf(free).indexOf(stop)));
  }

  // `system` is the chat's system message; a final assistant message is continued.
  const system = "You tell short stories.";
  const prefill = "Once upon a time, a cat";
  const messages = [...STORY, { role: "assistant" as const, content: prefill }];
  const continued = await client.messages.create(
    { ...base, system, messages } as Anthropic.MessageCreateParamsNonStreaming,
  );
  const chat = await server.client().chat.completions.create({
    model: "stories260K",
    max_tokens: 24,
    temperature: 0,
    messages: [{ role: "system", content: system }, ...messages],
    continue_final_message: true,
  } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.equal(textOf(continued), chat.choices[0]!.message.content);
  const blocks = await client.messages.create({
    ...base,
    system: [{ type: "text", text: system }],
    messages: [STORY[0]!, {
      role: "assistant",
      content: [{ type: "text", text: "Once upon a time," }, { type: "text", text: " a cat" }],
    }],
  } as Anthropic.MessageCreateParamsNonStreaming);
  assert.deepEqual(blocks.content, continued.content);
});

Deno.test("messages: count_tokens counts the prompt a message reads; repeated prompts are read from the prefix cache; max_tokens 0 fills it", async () => {
  await using server = await startServer();
  const client = anthropic(server);
  const messages = [{
    role: "user" as const,
    content: "Tell me a long story about a cat and a dog who went to the park together.",
  }];
  const { input_tokens: count } = await client.messages.countTokens({
    model: "stories260K",
    system: "Be kind.",
    messages,
  });
  // Filled, not answered.
  const warm = await client.messages.create({
    model: "stories260K",
    system: "Be kind.",
    max_tokens: 0,
    messages,
  });
  assert.deepEqual(warm.content, []);
  assert.equal(warm.stop_reason, "max_tokens");
  assert.equal(warm.usage.output_tokens, 0);
  assert.equal(warm.usage.input_tokens, count);
  assert.equal(warm.usage.cache_read_input_tokens, 0);
  const answer = await client.messages.create({
    ...GREEDY,
    model: "stories260K",
    system: "Be kind.",
    max_tokens: 4,
    messages,
  } as Anthropic.MessageCreateParamsNonStreaming);
  const cached = answer.usage.cache_read_input_tokens!;
  assert.ok(cached > 0 && cached < count, `${cached} of ${count}`);
  assert.equal(answer.usage.input_tokens + cached, count);
});

Deno.test("models: Anthropic's client lists and retrieves the served model, by its id or an alias", async () => {
  await using server = await startServer({ modelAliases: ["claude-sonnet-4-5"] });
  const client = anthropic(server);
  const listed = [];
  for await (const model of client.models.list()) listed.push(model);
  assert.deepEqual(listed.map((m) => [m.id, m.type, m.display_name]), [
    ["stories260K", "model", "stories260K"],
  ]);
  assert.ok(!Number.isNaN(Date.parse(listed[0]!.created_at)));
  assert.equal((await client.models.retrieve("claude-sonnet-4-5")).id, "stories260K");
  const missing = await client.models.retrieve("claude-opus-4").catch((e: unknown) => e);
  assert.ok(missing instanceof Anthropic.NotFoundError, String(missing));
  // An alias serves messages as the model.
  const message = await client.messages.create({
    model: "claude-sonnet-4-5",
    max_tokens: 2,
    messages: STORY,
  });
  assert.equal(message.model, "stories260K");
});

Deno.test("messages: a max_tokens past the context window is cut to it, and the answer ends with model_context_window_exceeded", async () => {
  await using server = await startServer();
  const client = anthropic(server);
  const context = (await server.client().models.retrieve("stories260K") as unknown as {
    context_length: number;
  }).context_length;
  const ask = (words: number) => [{
    role: "user" as const,
    content: `Tell me about ${"the big red cat and ".repeat(words)}the dog.`,
  }];
  // The longest prompt that leaves the answer a few tokens.
  let words = 1;
  const count = async (w: number) =>
    (await client.messages.countTokens({ model: "stories260K", messages: ask(w) })).input_tokens;
  while (await count(words * 2) < context - 8) words *= 2;
  for (let step = words / 2; step >= 1; step /= 2) {
    if (await count(words + step) < context - 8) words += step;
  }
  const prompt = await count(words);
  assert.ok(prompt >= context - 20 && prompt < context - 8, `${prompt} of ${context}`);
  const body = { ...GREEDY, model: "stories260K", messages: ask(words) };
  // (The SDK wants a stream past about 21,000 tokens.)
  const full = await client.messages.create(
    { ...body, max_tokens: 16000 } as Anthropic.MessageCreateParamsNonStreaming,
  );
  assert.equal(full.stop_reason, "model_context_window_exceeded", JSON.stringify(full));
  assert.equal(full.usage.output_tokens, context - prompt);
  const streamed = await client.messages.stream(
    { ...body, max_tokens: 32000 } as Anthropic.MessageStreamParams,
  ).finalMessage();
  assert.equal(streamed.stop_reason, "model_context_window_exceeded");
  assert.deepEqual(streamed.content, full.content);
  const capped = await client.messages.create(
    { ...body, max_tokens: 3 } as Anthropic.MessageCreateParamsNonStreaming,
  );
  assert.equal(capped.stop_reason, "max_tokens");
  // A prompt that fills the context is refused.
  const tooLong = await client.messages.create({
    model: "stories260K",
    max_tokens: 10,
    messages: ask(words * 4),
  }).catch((e: unknown) => e);
  assert.ok(tooLong instanceof Anthropic.BadRequestError, String(tooLong));
});

Deno.test("messages: context_management clears old tool results, reports what it cleared, and count_tokens counts after it", async () => {
  await using server = await startServer();
  const client = anthropic(server);
  const use = (n: number) => [
    {
      role: "assistant" as const,
      content: [{ type: "tool_use" as const, id: `toolu_${n}`, name: "read", input: { n } }],
    },
    {
      role: "user" as const,
      content: [{
        type: "tool_result" as const,
        tool_use_id: `toolu_${n}`,
        content: `The cat sat on the mat ${n}. `.repeat(6),
      }],
    },
  ];
  const messages = [STORY[0]!, ...use(1), ...use(2), ...use(3)];
  const tools = [{ name: "read", input_schema: { type: "object" as const, properties: {} } }];
  const context_management = {
    edits: [{
      type: "clear_tool_uses_20250919",
      trigger: { type: "tool_uses", value: 2 },
      keep: { type: "tool_uses", value: 1 },
    }],
  };
  const body = { model: "stories260K", messages, tools, tool_choice: { type: "none" as const } };
  const plain = await client.messages.countTokens(body);
  const counted = await client.messages.countTokens(
    { ...body, context_management } as Anthropic.MessageCountTokensParams,
  );
  const raw = counted as unknown as { context_management: { original_input_tokens: number } };
  assert.equal(raw.context_management.original_input_tokens, plain.input_tokens);
  assert.ok(counted.input_tokens < plain.input_tokens - 20, `${counted.input_tokens}`);
  const params = { ...body, max_tokens: 2, context_management };
  const whole = await client.messages.create(params as Anthropic.MessageCreateParamsNonStreaming);
  const report = (whole as unknown as { context_management: unknown }).context_management;
  assert.deepEqual(report, {
    applied_edits: [{
      type: "clear_tool_uses_20250919",
      cleared_tool_uses: 2,
      cleared_input_tokens: plain.input_tokens - counted.input_tokens,
    }],
  });
  assert.equal(
    whole.usage.input_tokens + whole.usage.cache_read_input_tokens!,
    counted.input_tokens,
  );
  let streamed: unknown;
  const stream = await client.messages.create(
    { ...params, stream: true } as Anthropic.MessageCreateParamsStreaming,
  );
  for await (const event of stream) {
    if (event.type === "message_delta") {
      streamed = (event as unknown as { context_management: unknown }).context_management;
    }
  }
  assert.deepEqual(streamed, report);
});

Deno.test("messages: errors are Anthropic's shape and name the field; keys may come as x-api-key", async () => {
  await using server = await startServer({ apiKeys: ["sk-local"] });
  const client = anthropic(server, "sk-local");
  const rejects = async (
    params: Record<string, unknown>,
    status: number,
    type: string,
    mentions: string,
  ) => {
    const error = await client.messages.create(
      {
        model: "stories260K",
        max_tokens: 4,
        messages: STORY,
        ...params,
      } as Anthropic.MessageCreateParamsNonStreaming,
    ).then(() => assert.fail(`accepted ${JSON.stringify(params)}`), (e: unknown) => e);
    assert.ok(error instanceof Anthropic.APIError, String(error));
    assert.equal(error.status, status, error.message);
    const body = error.error as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, "error");
    assert.equal(body.error.type, type);
    assert.ok(body.error.message.includes(mentions), body.error.message);
  };
  await rejects({ max_tokens: undefined }, 400, "invalid_request_error", "'max_tokens'");
  await rejects({ max_token: 4 }, 400, "invalid_request_error", "max_token");
  await rejects({ temperature: 1.5 }, 400, "invalid_request_error", "'temperature'");
  await rejects(
    {
      messages: [{
        role: "user",
        content: [{ type: "image", source: { type: "url", url: "http://x/y.png" } }],
      }],
    },
    400,
    "invalid_request_error",
    "'messages[0].content[0].type'",
  );
  await rejects(
    { tools: [{ type: "web_search_20250305", name: "web_search" }] },
    400,
    "invalid_request_error",
    "'tools[0].type'",
  );
  await rejects({ mcp_servers: [] }, 400, "invalid_request_error", "mcp_servers");
  await rejects({ model: "claude-opus-4" }, 404, "not_found_error", "claude-opus-4");

  const wrong = await anthropic(server, "sk-wrong").messages.countTokens({
    model: "stories260K",
    messages: STORY,
  }).catch((e: unknown) => e);
  assert.ok(wrong instanceof Anthropic.AuthenticationError, String(wrong));
  assert.equal((wrong.error as { error: { type: string } }).error.type, "authentication_error");
  // Anthropic's clients send x-api-key; a Bearer token works too.
  const bearer = new Anthropic({
    baseURL: server.url,
    apiKey: null,
    authToken: "sk-local",
    maxRetries: 0,
  });
  assert.ok(
    (await bearer.messages.countTokens({ model: "stories260K", messages: STORY }))
      .input_tokens > 0,
  );
  // OpenAI's routes keep OpenAI's shape.
  const openai = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "x-api-key": "sk-local" },
    body: JSON.stringify({ model: "nope", messages: STORY }),
  });
  assert.equal(openai.status, 404);
  assert.equal((await openai.json()).error.code, "model_not_found");
});

const TOOLS = [{
  name: "get_weather",
  description: "Current weather of a city",
  input_schema: WEATHER as unknown as Anthropic.Tool.InputSchema,
}];

Deno.test("messages: tools give tool_use blocks with valid input, whole and streamed, and tool results go back in", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const client = anthropic(server);
  const ask = [{ role: "user" as const, content: "Weather in Paris?" }];
  const whole = await client.messages.create({
    model: "smollm2-tiny",
    max_tokens: 60,
    messages: ask,
    tools: TOOLS,
    tool_choice: { type: "any" },
  });
  assert.equal(whole.stop_reason, "tool_use");
  const uses = whole.content.filter((b) => b.type === "tool_use");
  assert.ok(uses.length >= 1);
  for (const use of uses) {
    assert.equal(use.name, "get_weather");
    assert.match(use.id, /^toolu_/);
    assert.ok(validateWeather(use.input), JSON.stringify(use.input));
  }

  const stream = client.messages.stream({
    model: "smollm2-tiny",
    max_tokens: 60,
    messages: ask,
    tools: TOOLS,
    tool_choice: { type: "tool", name: "get_weather", disable_parallel_tool_use: true },
  });
  let partial = "";
  stream.on("inputJson", (delta) => (partial += delta));
  const streamed = await stream.finalMessage();
  assert.equal(streamed.stop_reason, "tool_use");
  assert.equal(streamed.content.length, 1);
  const use = streamed.content[0]!;
  assert.ok(use.type === "tool_use", JSON.stringify(use));
  assert.ok(validateWeather(use.input), JSON.stringify(use.input));
  assert.deepEqual(JSON.parse(partial), use.input);

  // The call and its result, written back through the template, answer in text.
  const followUp = await client.messages.create({
    model: "smollm2-tiny",
    max_tokens: 8,
    tools: TOOLS,
    tool_choice: { type: "none" },
    messages: [...ask, { role: "assistant", content: streamed.content }, {
      role: "user",
      content: [{ type: "tool_result", tool_use_id: use.id, content: "18 degrees, sunny" }],
    }],
  });
  assert.ok(followUp.content.every((b) => b.type === "text"));
  assert.notEqual(followUp.stop_reason, "tool_use");
  const { input_tokens: withResult } = await client.messages.countTokens({
    model: "smollm2-tiny",
    messages: [...ask, { role: "assistant", content: streamed.content }, {
      role: "user",
      content: [{ type: "tool_result", tool_use_id: use.id, content: "18 degrees, sunny" }],
    }],
  });
  const { input_tokens: without } = await client.messages.countTokens({
    model: "smollm2-tiny",
    messages: ask,
  });
  assert.ok(withResult > without + 8, `${withResult} vs ${without}`);
});

Deno.test("messages: output_config.format gives JSON matching the schema", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const client = anthropic(server);
  for (const stream of [false, true]) {
    const params = {
      model: "smollm2-tiny",
      max_tokens: 60,
      messages: [{ role: "user" as const, content: "Weather in Paris, as JSON" }],
      output_config: { format: { type: "json_schema" as const, schema: WEATHER } },
    };
    const message = stream
      ? await client.messages.stream(params).finalMessage()
      : await client.messages.create(params);
    assert.equal(message.stop_reason, "end_turn");
    assert.ok(validateWeather(JSON.parse(textOf(message))), textOf(message));
  }
});

Deno.test("messages: a thinking model's reasoning is a thinking block, written back next turn; thinking disabled asks the template for none", async () => {
  assert.notEqual(SWITCHED_TEMPLATE, THINKING_TEMPLATE);
  const service = await loadTinySmolLM2("thinking", SWITCHED_TEMPLATE);
  await using server = await startServer({}, service);
  const client = anthropic(server);
  const body = {
    ...GREEDY,
    model: "thinking",
    max_tokens: 12,
    messages: [{ role: "user", content: "Why is the sky blue?" }],
    thinking: { type: "enabled", budget_tokens: 1024 },
  };
  const whole = await client.messages.create(body as Anthropic.MessageCreateParamsNonStreaming);
  const chat = await server.client().chat.completions.create({
    model: "thinking",
    max_tokens: 12,
    temperature: 0,
    messages: [{ role: "user", content: "Why is the sky blue?" }],
  });
  const reasoning = (chat.choices[0]!.message as unknown as { reasoning_content: string })
    .reasoning_content;
  assert.ok(reasoning.length > 0);
  // The random model never closes its block: all 12 tokens are reasoning.
  assert.deepEqual(whole.content, [{ type: "thinking", thinking: reasoning, signature: "" }]);
  assert.equal(whole.usage.output_tokens_details?.thinking_tokens, 12);
  const streamed = await client.messages.stream(body as Anthropic.MessageStreamParams)
    .finalMessage();
  assert.deepEqual(streamed.content, whole.content);

  // A budget closes the block after that many tokens; the answer follows in the same message.
  const short = await server.client().chat.completions.create({
    model: "thinking",
    max_tokens: 4,
    temperature: 0,
    messages: [{ role: "user", content: "Why is the sky blue?" }],
  });
  const closeTokens = service.tokenizer.encode("</think>", { addBos: false }).length;
  for (const [budget, thought] of [[4, short], [0, null]] as const) {
    const params = { ...body, thinking: { type: "enabled", budget_tokens: budget } };
    const budgeted = await client.messages.create(
      params as Anthropic.MessageCreateParamsNonStreaming,
    );
    const expected = thought === null ? [] : [{
      type: "thinking",
      thinking: (thought.choices[0]!.message as unknown as { reasoning_content: string })
        .reasoning_content,
      signature: "",
    }];
    assert.deepEqual(budgeted.content.slice(0, -1), expected);
    assert.equal(budgeted.content.at(-1)!.type, "text");
    assert.ok(textOf(budgeted).length > 0);
    assert.equal(budgeted.stop_reason, "max_tokens");
    assert.equal(budgeted.usage.output_tokens_details!.thinking_tokens, budget + closeTokens);
    const budgetStream = await client.messages.stream(params as Anthropic.MessageStreamParams)
      .finalMessage();
    assert.deepEqual(budgetStream.content, budgeted.content);
  }

  // Written back as the template's reasoning_content.
  const history = [
    { role: "user" as const, content: "Why is the sky blue?" },
    {
      role: "assistant" as const,
      content: [
        { type: "thinking" as const, thinking: "Light scatters.", signature: "" },
        { type: "text" as const, text: "Rayleigh scattering." },
      ],
    },
    { role: "user" as const, content: "And sunsets?" },
  ];
  const withThought = await client.messages.countTokens({ model: "thinking", messages: history });
  const without = await client.messages.countTokens({
    model: "thinking",
    messages: history.map((m, i) =>
      i === 1 ? { ...m, content: [{ type: "text" as const, text: "Rayleigh scattering." }] } : m
    ),
  });
  assert.ok(withThought.input_tokens > without.input_tokens);

  // Claude Code's context_management keeps every turn's thinking; keeping none drops it.
  const edited = (keep: unknown) =>
    client.messages.countTokens({
      model: "thinking",
      messages: history,
      context_management: { edits: [{ type: "clear_thinking_20251015", keep }] },
    } as Anthropic.MessageCountTokensParams);
  assert.equal((await edited("all")).input_tokens, withThought.input_tokens);
  assert.equal(
    (await edited({ type: "thinking_turns", value: 0 })).input_tokens,
    without.input_tokens,
  );

  // With display "omitted", the blocks come without their text.
  const omitted = { ...body, thinking: { type: "adaptive", display: "omitted" } };
  const hidden = await client.messages.create(omitted as Anthropic.MessageCreateParamsNonStreaming);
  assert.deepEqual(hidden.content, [{ type: "thinking", thinking: "", signature: "" }]);
  const hiddenStream = await client.messages.stream(omitted as Anthropic.MessageStreamParams)
    .finalMessage();
  assert.deepEqual(hiddenStream.content, hidden.content);

  const off = await client.messages.create(
    { ...body, thinking: { type: "disabled" } } as Anthropic.MessageCreateParamsNonStreaming,
  );
  const offChat = await server.client().chat.completions.create({
    model: "thinking",
    max_tokens: 12,
    temperature: 0,
    messages: [{ role: "user", content: "Why is the sky blue?" }],
    chat_template_kwargs: { enable_thinking: false },
  } as OpenAI.ChatCompletionCreateParamsNonStreaming);
  assert.ok(textOf(off).length > 0);
  assert.equal(textOf(off), offChat.choices[0]!.message.content);
  assert.ok(!off.content.some((b) => b.type === "thinking"));
});

/** A template that, as Gemma's does, refuses turns that do not alternate user and assistant. */
const STRICT_TEMPLATE = "{%- set offset = 1 if messages[0]['role'] == 'system' else 0 -%}" +
  "{%- for message in messages -%}" +
  "{%- if loop.index0 >= offset and ((message['role'] == 'user') != ((loop.index0 - offset) % 2 == 0)) -%}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant') }}" +
  "{%- endif -%}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
  "{%- endfor -%}" +
  "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}";

Deno.test("messages: a template that insists on alternating turns gets them: Claude Code's mid-conversation system messages and tool results merge into user turns", async () => {
  await using server = await startServer({}, await loadTinySmolLM2("strict", STRICT_TEMPLATE));
  const client = anthropic(server);
  const turns = [
    { role: "user" as const, content: "Weather in Paris?" },
    { role: "system", content: "The tools may change." },
    {
      role: "assistant" as const,
      content: [{ type: "tool_use" as const, id: "toolu_1", name: "get_weather", input: {} }],
    },
    {
      role: "user" as const,
      content: [
        { type: "tool_result" as const, tool_use_id: "toolu_1", content: "18 degrees" },
        { type: "text" as const, text: "And tomorrow?" },
      ],
    },
  ];
  const message = await client.messages.create({
    model: "strict",
    max_tokens: 4,
    tools: TOOLS,
    tool_choice: { type: "none" },
    messages: turns,
  } as Anthropic.MessageCreateParamsNonStreaming);
  assert.equal(message.usage.output_tokens, 4);
  // Counted as rendered.
  const { input_tokens: merged } = await client.messages.countTokens({
    model: "strict",
    messages: turns,
  } as Anthropic.MessageCountTokensParams);
  assert.ok(merged > 0);
  // A failure of another kind still stands.
  const other = await client.messages.create({
    model: "strict",
    max_tokens: 4,
    messages: [{ role: "assistant", content: "Hello" }, { role: "user", content: "Hi" }],
  }).catch((e: unknown) => e);
  assert.ok(other instanceof Anthropic.BadRequestError, String(other));
  assert.match(other.message, /must alternate/);
});
