/**
 * A thinking model's reasoning, split out of its answer: the tiny random SmolLM2 with a
 * template that, like DeepSeek-R1's and Qwen3's, opens the answer with `<think>` and writes
 * earlier turns' reasoning back.
 */
import assert from "node:assert/strict";
import type OpenAI from "openai";
import { startServer } from "./_serve_harness.ts";
import { loadTinySmolLM2, SWITCHED_TEMPLATE, THINKING_TEMPLATE } from "./_smollm2.ts";

const GREEDY = { model: "thinking", temperature: 0, max_tokens: 12, ignore_eos: true } as const;

/** The chat answer, whole, and the reasoning and content of the same request streamed. */
async function answer(client: OpenAI, messages: object[], extra: object = {}) {
  const body = { ...GREEDY, messages, ...extra } as OpenAI.Chat.ChatCompletionCreateParams;
  const whole = await client.chat.completions.create({ ...body, stream: false });
  const message = whole.choices[0]!.message as unknown as Record<string, unknown>;
  let reasoning = "";
  let content = "";
  const aliases: unknown[] = [];
  for await (
    const chunk of await client.chat.completions.create({ ...body, stream: true })
  ) {
    const delta = chunk.choices[0]?.delta as Record<string, unknown> | undefined;
    if (typeof delta?.reasoning_content === "string") reasoning += delta.reasoning_content;
    if (delta?.reasoning !== undefined) aliases.push(delta.reasoning === delta.reasoning_content);
    content += typeof delta?.content === "string" ? delta.content : "";
  }
  return { message, streamed: { reasoning, content }, aliases, usage: whole.usage! };
}

Deno.test("a thinking model's answer comes as reasoning_content (and reasoning), then content, whole and streamed", async () => {
  await using server = await startServer({}, await loadTinySmolLM2("thinking", THINKING_TEMPLATE));
  const client = server.client();
  const user = { role: "user", content: "Why is the sky blue?" };
  // The prompt opens the reasoning: all the random model writes is reasoning until </think>.
  const raw = await client.completions.create({
    ...GREEDY,
    prompt: "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n<think>\n",
  } as OpenAI.CompletionCreateParamsNonStreaming);
  const generated = raw.choices[0]!.text;
  assert.ok(!generated.includes("</think>"), generated);
  const thinking = await answer(client, [user]);
  assert.equal(thinking.message.reasoning_content, generated.trimStart());
  assert.equal(thinking.message.reasoning, thinking.message.reasoning_content);
  assert.equal(thinking.message.content, "");
  assert.deepEqual(thinking.streamed, { reasoning: generated.trimStart(), content: "" });
  assert.ok(thinking.aliases.length > 0 && thinking.aliases.every((same) => same));
  // Every token was reasoning.
  assert.equal(thinking.usage.completion_tokens_details?.reasoning_tokens, 12);

  // A final message that closed its reasoning is continued as content.
  const reasoned = { role: "assistant", content: "<think>\nblue light scatters</think>\n\nSo" };
  const continued = await answer(client, [user, reasoned], { continue_final_message: true });
  assert.equal(continued.message.reasoning_content, undefined);
  assert.ok((continued.message.content as string).length > 0);
  assert.deepEqual(continued.streamed, { reasoning: "", content: continued.message.content });
  assert.equal(continued.usage.completion_tokens_details?.reasoning_tokens, 0);
});

Deno.test("an earlier turn's reasoning_content (or reasoning) reaches the template", async () => {
  await using server = await startServer({}, await loadTinySmolLM2("thinking", THINKING_TEMPLATE));
  const rendered = async (assistant: object) => {
    const tokens = await fetch(`${server.url}/tokenize`, {
      method: "POST",
      body: JSON.stringify({
        messages: [
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Hello!", ...assistant },
          { role: "user", content: "Bye" },
        ],
      }),
    });
    const ids = (await tokens.json()).tokens;
    const text = await fetch(`${server.url}/detokenize`, {
      method: "POST",
      body: JSON.stringify({ tokens: ids }),
    });
    return (await text.json()).prompt as string;
  };
  for (const key of ["reasoning_content", "reasoning"]) {
    assert.match(
      await rendered({ [key]: "they said hi" }),
      /<think>they said hi<\/think>\n\nHello!/,
    );
  }
  assert.doesNotMatch(await rendered({}), /they said hi/);
  const refused = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({
      messages: [{ role: "assistant", content: "x", reasoning_content: 3 }, {
        role: "user",
        content: "y",
      }],
    }),
  });
  assert.equal(refused.status, 400);
  assert.equal((await refused.json()).error.param, "messages[0].reasoning_content");
});

/**
 * A response to a second question after an answered first one, with `reasoning` (input items)
 * ahead of that answer: its usage tells how much of the reasoning reached the template.
 */
function secondTurn(client: OpenAI, request: object, reasoning: object[]) {
  return client.responses.create({
    ...request,
    max_output_tokens: 1,
    input: [
      { role: "user", content: "Why is the sky blue?" },
      ...reasoning,
      { role: "assistant", content: "Rayleigh scattering." },
      { role: "user", content: "And sunsets?" },
    ],
  } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
}

Deno.test("a thinking model's reasoning is a reasoning item in the Responses API, whole and streamed by the client's helper", async () => {
  await using server = await startServer({}, await loadTinySmolLM2("thinking", THINKING_TEMPLATE));
  const client = server.client();
  const raw = await client.completions.create({
    ...GREEDY,
    prompt: "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n<think>\n",
  } as OpenAI.CompletionCreateParamsNonStreaming);
  const generated = raw.choices[0]!.text.trimStart();
  const request = {
    model: "thinking",
    input: "Why is the sky blue?",
    temperature: 0,
    max_output_tokens: 12,
  };
  const whole = await client.responses.create(request);
  const shape = (output: readonly OpenAI.Responses.ResponseOutputItem[]) =>
    output.map((item) =>
      item.type === "reasoning"
        ? { type: item.type, text: item.content?.map((c) => c.text).join("") }
        : item.type === "message"
        ? {
          type: item.type,
          text: item.content.map((c) => c.type === "output_text" ? c.text : "").join(""),
        }
        : { type: item.type }
    );
  assert.deepEqual(shape(whole.output), [
    { type: "reasoning", text: generated },
    { type: "message", text: "" },
  ]);
  assert.equal(whole.usage!.output_tokens_details.reasoning_tokens, whole.usage!.output_tokens);
  // The client's stream helper checks every event against the items it has seen.
  const streamed = await client.responses.stream(request).finalResponse();
  assert.deepEqual(shape(streamed.output), shape(whole.output));
  // A reasoning item given back goes with the assistant turn after it, into the template.
  const turns = (reasoning: object[]) => secondTurn(client, request, reasoning);
  const item = {
    type: "reasoning",
    summary: [],
    content: [{ type: "reasoning_text", text: "light" }],
  };
  const [without, withItem] = [await turns([]), await turns([item])];
  // "<think>light</think>" and the blank line after it: 8 or 9 tokens, by what is around it.
  const added = withItem.usage!.input_tokens - without.usage!.input_tokens;
  assert.ok(added >= 8 && added <= 9, `${added} tokens more`);
  const refused = await fetch(`${server.url}/v1/responses`, {
    method: "POST",
    body: JSON.stringify({ ...request, input: [{ type: "reasoning", content: [{ type: "x" }] }] }),
  });
  assert.equal(refused.status, 400);
  assert.equal((await refused.json()).error.param, "input[0].content[0]");
});

Deno.test("a constraint holds after a thinking model's reasoning: it reasons freely, then answers in the format", async () => {
  await using server = await startServer({}, await loadTinySmolLM2("thinking", THINKING_TEMPLATE));
  const client = server.client();
  const user = { role: "user", content: "Is the sky blue?" };
  for (
    const format of [{ structured_outputs: { choice: ["yes", "no"] } }, {
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "verdict",
          schema: {
            type: "object",
            properties: { blue: { type: "boolean" } },
            required: ["blue"],
            additionalProperties: false,
          },
        },
      },
    }]
  ) {
    // The random model would reason on: near the limit, the mask closes its reasoning and
    // leaves room for the answer.
    const { message, streamed, usage } = await answer(client, [user], {
      ...format,
      max_tokens: 40,
    });
    assert.ok((message.reasoning_content as string).length > 0);
    const thought = usage.completion_tokens_details!.reasoning_tokens!;
    assert.ok(thought > 0 && thought < usage.completion_tokens, `${thought} reasoning tokens`);
    assert.deepEqual(streamed, { reasoning: message.reasoning_content, content: message.content });
    const content = message.content as string;
    if ("structured_outputs" in format) assert.ok(["yes", "no"].includes(content), content);
    else assert.equal(typeof JSON.parse(content).blue, "boolean");
  }
});

Deno.test("thinking_token_budget closes the reasoning block after that many tokens; the answer follows", async () => {
  const service = await loadTinySmolLM2("thinking", THINKING_TEMPLATE);
  await using server = await startServer({}, service);
  const client = server.client();
  const user = { role: "user", content: "Why is the sky blue?" };
  const short = await answer(client, [user], { max_tokens: 5 });
  const close = service.tokenizer.encode("</think>", { addBos: false }).length;
  const budgeted = await answer(client, [user], { thinking_token_budget: 5 });
  assert.equal(budgeted.message.reasoning_content, short.message.reasoning_content);
  assert.ok((budgeted.message.content as string).length > 0);
  assert.deepEqual(budgeted.streamed, {
    reasoning: budgeted.message.reasoning_content,
    content: budgeted.message.content,
  });
  assert.equal(budgeted.usage.completion_tokens_details?.reasoning_tokens, 5 + close);
  // -1: no limit.
  const free = await answer(client, [user], { thinking_token_budget: -1 });
  assert.equal(free.message.content, "");
});

Deno.test("responses as Codex asks for them: reasoning effort switches thinking, and reasoning carried in encrypted_content comes back into the template", async () => {
  await using server = await startServer({}, await loadTinySmolLM2("thinking", SWITCHED_TEMPLATE));
  const client = server.client();
  const request = {
    model: "thinking",
    input: "Why is the sky blue?",
    temperature: 0,
    max_output_tokens: 8,
    store: false,
    include: ["reasoning.encrypted_content" as const],
    reasoning: { effort: "medium" as const, summary: "auto" as const },
  };
  const thought = await client.responses.create(request);
  const item = thought.output[0]!;
  assert.ok(item.type === "reasoning", JSON.stringify(thought.output));
  const text = item.content!.map((c) => c.text).join("");
  assert.ok(text.length > 0);
  assert.equal(typeof item.encrypted_content, "string");
  const streamed = await client.responses.stream(request).finalResponse();
  assert.deepEqual(streamed.output[0], { ...item, id: streamed.output[0]!.id });

  // Sent back as Codex does (no content, the carried text only), it is the turn's reasoning.
  const turns = (reasoning: object[]) => secondTurn(client, request, reasoning);
  const carried = { type: "reasoning", summary: [], encrypted_content: item.encrypted_content };
  const written = { type: "reasoning", summary: [], content: item.content };
  const [bare, viaCarried, viaContent] = [
    await turns([]),
    await turns([carried]),
    await turns([written]),
  ];
  assert.ok(viaCarried.usage!.input_tokens > bare.usage!.input_tokens);
  assert.equal(viaCarried.usage!.input_tokens, viaContent.usage!.input_tokens);
  // Another server's encrypted content is opaque: it adds nothing.
  const foreign = await turns([{ ...carried, encrypted_content: "gAAAAABopaque" }]);
  assert.equal(foreign.usage!.input_tokens, bare.usage!.input_tokens);

  // Effort none asks the template not to think: the answer is all message.
  const quiet = await client.responses.create({ ...request, reasoning: { effort: "none" } });
  assert.deepEqual(quiet.output.map((o) => o.type), ["message"]);
  const refused = await client.responses.create({ ...request, reasoning: { mode: "pro" } })
    .catch((e: unknown) => e);
  assert.ok(refused instanceof Error && (refused as { param?: string }).param === "reasoning.mode");
});

Deno.test("chat's reasoning_effort switches a thinking model's thinking, as enable_thinking does", async () => {
  await using server = await startServer({}, await loadTinySmolLM2("thinking", SWITCHED_TEMPLATE));
  const client = server.client();
  const user = { role: "user", content: "Why is the sky blue?" };
  const off = await answer(client, [user], { reasoning_effort: "none" });
  const kwargs = await answer(client, [user], {
    chat_template_kwargs: { enable_thinking: false },
  });
  assert.equal(off.message.reasoning_content, undefined);
  assert.equal(off.message.content, kwargs.message.content);
  const high = await answer(client, [user], { reasoning_effort: "high" });
  assert.ok((high.message.reasoning_content as string).length > 0);
  // chat_template_kwargs says last.
  const both = await answer(client, [user], {
    reasoning_effort: "high",
    chat_template_kwargs: { enable_thinking: false },
  });
  assert.equal(both.message.content, kwargs.message.content);
  const refused = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ ...GREEDY, messages: [user], reasoning_effort: "extreme" }),
  });
  assert.equal(refused.status, 400);
  assert.equal((await refused.json()).error.param, "reasoning_effort");
});
