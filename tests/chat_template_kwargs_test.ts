/**
 * `chat_template_kwargs`: the tiny random SmolLM2 with a template that, like Qwen3's, writes an
 * empty thinking block when `enable_thinking` is false.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import OpenAI from "openai";
import { convertModel } from "../models/convert.ts";
import { loadService } from "../src/engine/load_service.ts";
import { writeTinySmolLM2 } from "./_hub.ts";
import { startServer } from "./_serve_harness.ts";

const TEMPLATE = "{%- for message in messages %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}" +
  "{%- if enable_thinking is defined and enable_thinking is false %}" +
  "{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}";

const MESSAGES = [{ role: "user" as const, content: "Hello there" }];

async function thinkingService() {
  const root = await Deno.makeTempDir({ prefix: "rill_kwargs_" });
  try {
    const folder = join(root, "hf");
    await writeTinySmolLM2(folder);
    await Deno.writeTextFile(join(folder, "chat_template.jinja"), TEMPLATE);
    const archive = join(root, "model.nnef.tar");
    await convertModel(folder, archive, {});
    const loaded = await loadService(archive, { modelId: "thinking-tiny" });
    await loaded.weightsReady;
    return loaded.service;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
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
