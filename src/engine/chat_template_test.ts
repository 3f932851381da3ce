import assert from "node:assert/strict";
import { alternatingTurns, readChatTemplate, renderChatTemplate } from "./chat_template.ts";

const TOKENIZERS = new URL("../../../shared/fixtures/tokenizers/", import.meta.url).pathname;

const CONVERSATION = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi!" },
];

async function config(model: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(`${TOKENIZERS}${model}/tokenizer_config.json`));
}

Deno.test("renderChatTemplate renders SmolLM2's ChatML template with a generation prompt", async () => {
  const template = await readChatTemplate(`${TOKENIZERS}smollm2`);
  assert.ok(template !== null);
  const text = renderChatTemplate(await config("smollm2"), CONVERSATION, { template });
  assert.equal(
    text,
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
  );
  const defaulted = renderChatTemplate(await config("smollm2"), CONVERSATION.slice(1), {
    template,
    addGenerationPrompt: false,
  });
  assert.ok(
    defaulted.startsWith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"),
  );
  assert.ok(defaulted.endsWith("<|im_start|>user\nHi!<|im_end|>\n"));
});

Deno.test("renderChatTemplate renders TinyLlama's Zephyr template with its eos_token", async () => {
  const template = await readChatTemplate(`${TOKENIZERS}tinyllama`);
  assert.ok(template !== null);
  const text = renderChatTemplate(await config("tinyllama"), CONVERSATION, { template });
  assert.equal(text, "<|system|>\nBe brief.</s>\n<|user|>\nHi!</s>\n<|assistant|>\n");
});

Deno.test("renderChatTemplate falls back to a plain template and reports template errors", () => {
  assert.equal(
    renderChatTemplate({}, CONVERSATION),
    "system: Be brief.\nuser: Hi!\nassistant:",
  );
  assert.equal(
    renderChatTemplate({
      chat_template: [{ name: "default", template: "{{ messages | length }}" }],
    }, CONVERSATION),
    "2",
  );
  assert.throws(() => renderChatTemplate({}, CONVERSATION, { template: "{% if %}" }), {
    name: "SyntaxError",
    message: /Bad chat template/,
  });
  assert.throws(
    () => renderChatTemplate({}, CONVERSATION, { template: "{{ raise_exception('no system') }}" }),
    /no system/,
  );
});

Deno.test("alternatingTurns merges consecutive turns and makes later system messages user ones", () => {
  assert.deepEqual(
    alternatingTurns([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Weather?" },
      { role: "system", content: "Tools changed." },
      { role: "user", content: "In Paris." },
      { role: "assistant", content: "Checking.", reasoning_content: "a" },
      { role: "assistant", content: null, tool_calls: [] },
      { role: "tool", content: "18 C" },
      { role: "tool", content: "sunny" },
    ]),
    [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Weather?\n\nTools changed.\n\nIn Paris." },
      { role: "assistant", content: "Checking.", reasoning_content: "a", tool_calls: [] },
      { role: "tool", content: "18 C" },
      { role: "tool", content: "sunny" },
    ],
  );
});
