/**
 * Fill in the middle over HTTP: `/v1/completions` with `suffix` (the openai client) and Ollama's
 * `/api/generate` with `suffix` (the ollama client), on a tiny model whose vocabulary has
 * Qwen2.5-Coder's fill-in-the-middle tokens.
 */
import assert from "node:assert/strict";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { startServer } from "./_serve_harness.ts";
import { loadTinySmolLM2 } from "./_smollm2.ts";
import { FIM_RENAMES } from "./_hub.ts";

const PREFIX = "def add(a, b):\n    ";
const SUFFIX = "\n\nprint(add(1, 2))\n";

Deno.test("fill in the middle: a suffix asks for the middle, as the prompt of the model's own tokens would", async () => {
  const service = await loadTinySmolLM2("coder", undefined, FIM_RENAMES);
  await using server = await startServer({}, service);
  const client = server.client();
  const { tokenizer } = service;
  // Qwen2.5-Coder's layout: prefix marker, prefix, suffix marker, suffix, middle marker.
  const ids = [
    tokenizer.encode("<|fim_prefix|>", { addBos: false })[0]!,
    ...tokenizer.encode(PREFIX, { addBos: false }),
    tokenizer.encode("<|fim_suffix|>", { addBos: false })[0]!,
    ...tokenizer.encode(SUFFIX, { addBos: false }),
    tokenizer.encode("<|fim_middle|>", { addBos: false })[0]!,
  ];
  const greedy = { model: "coder", max_tokens: 12, temperature: 0 };
  const expected = await client.completions.create({ ...greedy, prompt: ids });
  const filled = await client.completions.create({ ...greedy, prompt: PREFIX, suffix: SUFFIX });
  assert.equal(filled.choices[0]!.text, expected.choices[0]!.text);
  assert.equal(filled.usage!.prompt_tokens, ids.length);
  let streamed = "";
  for await (
    const chunk of await client.completions.create({
      ...greedy,
      prompt: PREFIX,
      suffix: SUFFIX,
      stream: true,
    })
  ) streamed += chunk.choices[0]?.text ?? "";
  assert.equal(streamed, expected.choices[0]!.text);

  // Ollama's generate, and its show, which names the capability.
  const ollama = new Ollama({ host: server.url });
  const generated = await ollama.generate({
    model: "coder",
    prompt: PREFIX,
    suffix: SUFFIX,
    options: { temperature: 0, num_predict: 12 },
  });
  assert.equal(generated.response, expected.choices[0]!.text);
  assert.equal(generated.prompt_eval_count, ids.length);
  assert.ok((await ollama.show({ model: "coder" })).capabilities.includes("insert"));
  await assert.rejects(
    ollama.generate({ model: "coder", prompt: PREFIX, suffix: SUFFIX, system: "Be brief" }),
    (e: Error) => /'suffix' fills in the middle: it cannot take 'system'/.test(e.message),
  );

  await assert.rejects(
    client.completions.create({ ...greedy, prompt: PREFIX, suffix: SUFFIX, echo: true }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "echo",
  );
});

Deno.test("fill in the middle: a model without the tokens refuses a suffix, naming it", async () => {
  await using server = await startServer();
  await assert.rejects(
    server.client().completions.create({
      model: "stories260K",
      prompt: "Once upon a time",
      suffix: "The end.",
      max_tokens: 4,
    }),
    (e: unknown) =>
      e instanceof OpenAI.BadRequestError && e.param === "suffix" &&
      e.code === "model_not_supported" && /cannot fill in the middle/.test(e.message),
  );
  const ollama = new Ollama({ host: server.url });
  assert.ok(!(await ollama.show({ model: "stories260K" })).capabilities.includes("insert"));
  await assert.rejects(
    ollama.generate({ model: "stories260K", prompt: "Once", suffix: "end" }),
    (e: Error) => /cannot fill in the middle/.test(e.message),
  );
});
