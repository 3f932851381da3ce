/**
 * Chat fields that reach the chat template: `chat_template_kwargs` (the tiny random SmolLM2
 * with a template that, like Qwen3's, writes an empty thinking block when `enable_thinking` is
 * false) and `continue_final_message` (SmolLM2's own template and stories260K's plain one).
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startServer } from "./_serve_harness.ts";
import { loadTinySmolLM2, smolLM2Service } from "./_smollm2.ts";

const TEMPLATE = "{%- for message in messages %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}" +
  "{%- if enable_thinking is defined and enable_thinking is false %}" +
  "{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}";

const MESSAGES = [{ role: "user" as const, content: "Hello there" }];

function thinkingService() {
  return loadTinySmolLM2("thinking-tiny", TEMPLATE);
}

Deno.test("chat_template_kwargs reach the chat template, in /tokenize and in chat completions", async () => {
  await using server = await startServer({}, await thinkingService());
  const tokenize = async (extra: object) => {
    const response = await fetch(`${server.url}/tokenize`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ messages: MESSAGES, ...extra }),
    });
    assert.equal(response.status, 200);
    return (await response.json()).tokens as number[];
  };
  const plain = await tokenize({});
  const thinking = await tokenize({ chat_template_kwargs: { enable_thinking: true } });
  const quiet = await tokenize({ chat_template_kwargs: { enable_thinking: false } });
  assert.deepEqual(thinking, plain);
  assert.deepEqual(quiet.slice(0, plain.length), plain);
  const tail = await fetch(`${server.url}/detokenize`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ tokens: quiet.slice(plain.length) }),
  });
  assert.equal((await tail.json()).prompt, "<think>\n\n</think>\n\n");

  const client = server.client();
  const answer = await client.chat.completions.create({
    model: "thinking-tiny",
    messages: MESSAGES,
    max_tokens: 2,
    // @ts-expect-error: an extension the openai types do not know
    chat_template_kwargs: { enable_thinking: false },
  });
  assert.equal(answer.usage!.prompt_tokens, quiet.length);
});

Deno.test("chat_template_kwargs that are not an object, or set what the server sets, are a 400 naming them", async () => {
  await using server = await startServer({}, await thinkingService());
  const client = server.client();
  const cases: [unknown, string][] = [
    [3, "chat_template_kwargs"],
    [["enable_thinking"], "chat_template_kwargs"],
    [{ messages: [] }, "chat_template_kwargs.messages"],
    [{ add_generation_prompt: false }, "chat_template_kwargs.add_generation_prompt"],
  ];
  for (const [kwargs, param] of cases) {
    await assert.rejects(
      client.chat.completions.create({
        model: "thinking-tiny",
        messages: MESSAGES,
        max_tokens: 2,
        // @ts-expect-error: an extension the openai types do not know
        chat_template_kwargs: kwargs,
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === param,
    );
  }
});

/** `POST /tokenize` of a chat body: the prompt's ids and text. */
async function rendered(url: string, body: object): Promise<{ ids: number[]; text: string }> {
  const post = (path: string, payload: object) =>
    fetch(`${url}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    }).then((r) => r.json());
  const ids = (await post("/tokenize", body)).tokens as number[];
  return { ids, text: (await post("/detokenize", { tokens: ids })).prompt };
}

Deno.test("continue_final_message ends the prompt right after the final assistant text, and the answer goes on from it", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const start = "The river ran";
  const messages = [
    { role: "user" as const, content: "Tell me about rivers" },
    { role: "assistant" as const, content: start },
  ];
  const turn = await rendered(server.url, { messages });
  const going = await rendered(server.url, { messages, continue_final_message: true });
  // SmolLM2's template closes the assistant's turn and opens another (the special tokens
  // around "assistant" detokenize to nothing); continuing does neither.
  assert.ok(turn.text.endsWith(`${start}\nassistant\n`), JSON.stringify(turn.text.slice(-40)));
  assert.ok(going.text.endsWith(start), JSON.stringify(going.text.slice(-40)));
  assert.deepEqual(going.ids, turn.ids.slice(0, going.ids.length));

  const client = server.client();
  const answer = await client.chat.completions.create({
    model: "smollm2-tiny",
    messages,
    max_tokens: 6,
    temperature: 0,
    // @ts-expect-error: an extension the openai types do not know
    continue_final_message: true,
  });
  assert.equal(answer.usage!.prompt_tokens, going.ids.length);
  const reference = await client.completions.create({
    model: "smollm2-tiny",
    prompt: going.ids,
    max_tokens: 6,
    temperature: 0,
  });
  assert.equal(answer.choices[0]!.message.content, reference.choices[0]!.text);
});

Deno.test("continue_final_message needs an assistant's text last; it works with a plain template too", async () => {
  await using server = await startServer();
  const client = server.client();
  for (
    const messages of [
      [{ role: "user" as const, content: "Once upon a time" }],
      [{ role: "assistant" as const, content: "" }],
    ]
  ) {
    await assert.rejects(
      client.chat.completions.create({
        model: "stories260K",
        messages,
        max_tokens: 2,
        // @ts-expect-error: an extension the openai types do not know
        continue_final_message: true,
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "continue_final_message",
    );
  }
  const going = await rendered(server.url, {
    messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Once upon a" }],
    continue_final_message: true,
  });
  assert.equal(going.text.trimStart(), "user: Hi\nassistant: Once upon a");
});
