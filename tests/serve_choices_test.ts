import assert from "node:assert/strict";
import OpenAI from "openai";
import { OpenAI as LangChainOpenAI } from "@langchain/openai";
import { metricValue, startServer } from "./_serve_harness.ts";

const CHAT = [{ role: "user" as const, content: "Tell me a story about a cat." }];
const SAMPLED = { model: "stories260K", temperature: 1, max_tokens: 24 } as const;

/** The content and usage one choice gets alone, sampled with `seed`. */
async function alone(client: OpenAI, seed: number) {
  const answer = await client.chat.completions.create({ ...SAMPLED, messages: CHAT, seed });
  assert.equal(answer.choices.length, 1);
  return { content: answer.choices[0]!.message.content, usage: answer.usage! };
}

Deno.test("n choices: choice i is what a one-choice request with seed + i gets, whole and streamed", async () => {
  await using server = await startServer();
  const client = server.client();
  const single = await Promise.all([0, 1, 2].map((i) => alone(client, 40 + i)));
  assert.equal(new Set(single.map((s) => s.content)).size, 3, "three seeds, three answers");

  const whole = await client.chat.completions.create({
    ...SAMPLED,
    messages: CHAT,
    seed: 40,
    n: 3,
  });
  assert.deepEqual(whole.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(whole.choices.map((c) => c.message.content), single.map((s) => s.content));
  // The prompt counts once; the completions add up.
  assert.equal(whole.usage!.prompt_tokens, single[0]!.usage.prompt_tokens);
  assert.equal(
    whole.usage!.completion_tokens,
    single.reduce((n, s) => n + s.usage.completion_tokens, 0),
  );
  assert.equal(
    whole.usage!.total_tokens,
    whole.usage!.prompt_tokens + whole.usage!.completion_tokens,
  );

  const stream = await client.chat.completions.create({
    ...SAMPLED,
    messages: CHAT,
    seed: 40,
    n: 3,
    stream: true,
    stream_options: { include_usage: true },
  });
  const texts = ["", "", ""];
  const roles = [0, 0, 0];
  const finishes: (string | null)[] = [null, null, null];
  let usage: OpenAI.CompletionUsage | undefined;
  let afterUsage = 0;
  for await (const chunk of stream) {
    if (usage !== undefined) afterUsage++;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      assert.equal(chunk.choices.length, 1, "one choice per chunk");
      assert.equal(
        finishes[choice.index],
        null,
        `choice ${choice.index} has nothing after its end`,
      );
      if (choice.delta.role === "assistant") roles[choice.index]!++;
      texts[choice.index] += choice.delta.content ?? "";
      finishes[choice.index] = choice.finish_reason;
    }
  }
  assert.deepEqual(roles, [1, 1, 1]);
  assert.deepEqual(texts, single.map((s) => s.content));
  assert.deepEqual(finishes, whole.choices.map((c) => c.finish_reason));
  assert.deepEqual(usage, whole.usage);
  assert.equal(afterUsage, 0, "the usage chunk comes last");
});

Deno.test("n choices of a text completion carry their own logprobs and text offsets", async () => {
  await using server = await startServer();
  const client = server.client();
  const request = {
    model: "stories260K",
    prompt: "Once upon a time",
    max_tokens: 8,
    temperature: 1,
    seed: 7,
    logprobs: 2,
  };
  const both = await client.completions.create({ ...request, n: 2 });
  const first = await client.completions.create(request);
  const second = await client.completions.create({ ...request, seed: 8 });
  assert.deepEqual(both.choices.map((c) => c.index), [0, 1]);
  for (const [i, one] of [first, second].entries()) {
    const choice = both.choices[i]!;
    assert.equal(choice.text, one.choices[0]!.text);
    assert.deepEqual(choice.logprobs, one.choices[0]!.logprobs);
    // Each choice's offsets start at the prompt's end.
    assert.equal(choice.logprobs!.text_offset![0], request.prompt.length);
  }
});

Deno.test("n choices generate as one batch: the running count reaches n, and a cancel ends them all", async () => {
  await using server = await startServer();
  const controller = new AbortController();
  // No choice may end before the count is read (stories260K ends at token 1 or 2).
  const body = {
    model: "stories260K",
    messages: CHAT,
    max_tokens: 200,
    n: 4,
    stream: true,
    ignore_eos: true,
  } as OpenAI.Chat.ChatCompletionCreateParamsStreaming;
  const stream = await server.client().chat.completions.create(body, {
    signal: controller.signal,
  });
  let running = 0;
  const seen = new Set<number>();
  try {
    for await (const chunk of stream) {
      for (const choice of chunk.choices) if (choice.delta.content) seen.add(choice.index);
      if (seen.size === 4 && running === 0) {
        running = await metricValue(server.url, "rill_sequences_running");
        controller.abort();
      }
    }
  } catch (error) {
    assert.ok(error instanceof OpenAI.APIUserAbortError, String(error));
  }
  assert.equal(running, 4);
  // Each choice frees its place as it ends; the request counts its cancel after the last.
  for (let i = 0; i < 200 && (await metricValue(server.url, "rill_cancellations_total")) < 1; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(await metricValue(server.url, "rill_cancellations_total"), 1);
  assert.equal(await metricValue(server.url, "rill_requests_running"), 0);
});

Deno.test("choices beyond the batch wait for a place; beyond what the server runs and queues, or n over 128, a 400 names n", async () => {
  await using server = await startServer({ maxBatch: 2, maxQueue: 1 });
  const client = server.client();
  for (const n of [4, 129]) {
    await assert.rejects(
      client.chat.completions.create({ model: "stories260K", messages: CHAT, n }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === "n",
    );
  }
  // Two run at once; the third runs when one of them ends.
  const three = await client.chat.completions.create({
    ...SAMPLED,
    messages: CHAT,
    seed: 40,
    n: 3,
  });
  assert.deepEqual(
    three.choices.map((c) => c.message.content),
    (await Promise.all([0, 1, 2].map((i) => alone(client, 40 + i)))).map((s) => s.content),
  );
});

Deno.test("each of n constrained choices follows its own tokens through the format", async () => {
  await using server = await startServer();
  const request = {
    model: "stories260K",
    messages: [{ role: "user" as const, content: "Describe a pet as JSON." }],
    max_tokens: 40,
    temperature: 1,
    seed: 2,
    response_format: { type: "json_object" as const },
  };
  const three = await server.client().chat.completions.create({ ...request, n: 3 });
  for (const [i, choice] of three.choices.entries()) {
    const value = JSON.parse(choice.message.content!);
    assert.ok(typeof value === "object" && value !== null && !Array.isArray(value));
    const one = await server.client().chat.completions.create({ ...request, seed: 2 + i });
    assert.equal(choice.message.content, one.choices[0]!.message.content);
  }
});

Deno.test("n choices compute the prompt once: the others start from its cached blocks", async () => {
  await using server = await startServer();
  const hits = () => metricValue(server.url, "rill_prefix_hit_tokens_total");
  const before = await hits();
  // 45 tokens no other test sends: two full 16-position blocks, the rest computed per choice.
  const prompt = [1, ...Array.from({ length: 44 }, (_, i) => 3 + ((i * 53 + 11) % 500))];
  const answer = await server.client().completions.create({
    model: "stories260K",
    prompt,
    n: 3,
    max_tokens: 4,
    temperature: 1,
    seed: 3,
  });
  assert.equal(answer.choices.length, 3);
  assert.equal(answer.usage!.prompt_tokens, 45);
  assert.equal(answer.usage!.prompt_tokens_details?.cached_tokens, 0);
  assert.equal((await hits()) - before, 2 * 32);
});

const PROMPTS = ["Once upon a time", "The little dog", "One day, Lily"];

Deno.test("a text completion of several prompts: choice p * n + j is prompt p's choice j, whole and streamed", async () => {
  await using server = await startServer();
  const client = server.client();
  const request = {
    model: "stories260K",
    max_tokens: 8,
    temperature: 1,
    seed: 5,
    logprobs: 1,
  };
  const single = [];
  for (const [p, prompt] of PROMPTS.entries()) {
    for (const j of [0, 1]) {
      single.push(await client.completions.create({ ...request, prompt, seed: 5 + p * 2 + j }));
    }
  }
  const whole = await client.completions.create({ ...request, prompt: PROMPTS, n: 2 });
  assert.deepEqual(whole.choices.map((c) => c.index), [0, 1, 2, 3, 4, 5]);
  for (const [i, choice] of whole.choices.entries()) {
    assert.equal(choice.text, single[i]!.choices[0]!.text);
    assert.deepEqual(choice.logprobs, single[i]!.choices[0]!.logprobs);
    // Offsets start where the choice's own prompt ends.
    assert.equal(choice.logprobs!.text_offset![0], PROMPTS[Math.floor(i / 2)]!.length);
  }
  // Each prompt counts once; every completion counts.
  const prompts = single.filter((_, i) => i % 2 === 0);
  assert.equal(whole.usage!.prompt_tokens, prompts.reduce((n, r) => n + r.usage!.prompt_tokens, 0));
  assert.equal(
    whole.usage!.completion_tokens,
    single.reduce((n, r) => n + r.usage!.completion_tokens, 0),
  );

  const stream = await client.completions.create({
    ...request,
    prompt: PROMPTS,
    n: 2,
    stream: true,
    stream_options: { include_usage: true },
  });
  const texts = Array.from({ length: 6 }, () => "");
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) texts[choice.index] += choice.text;
  }
  assert.deepEqual(texts, whole.choices.map((c) => c.text));
  assert.deepEqual(usage, whole.usage);
});

Deno.test("LangChain's OpenAI LLM sends its prompts in one request, and each gets its own completion", async () => {
  await using server = await startServer();
  const llm = new LangChainOpenAI({
    model: "stories260K",
    apiKey: "none",
    configuration: { baseURL: `${server.url}/v1` },
    maxRetries: 0,
    maxTokens: 10,
    temperature: 0,
  });
  const client = server.client();
  const alone = [];
  for (const prompt of PROMPTS) {
    alone.push(
      (await client.completions.create({
        model: "stories260K",
        prompt,
        max_tokens: 10,
        temperature: 0,
      })).choices[0]!.text,
    );
  }
  const result = await llm.generate(PROMPTS);
  assert.deepEqual(result.generations.map((g) => g.map((x) => x.text)), alone.map((t) => [t]));
  assert.ok((result.llmOutput?.tokenUsage?.completionTokens ?? 0) > 0);
  assert.deepEqual(await llm.batch(PROMPTS), alone);
});

Deno.test("a prompt list is checked prompt by prompt, errors naming the prompt", async () => {
  await using server = await startServer();
  const client = server.client();
  const long = "Once upon a time there was a cat. ".repeat(80);
  const cases: [unknown, string][] = [
    [["Once", 5], "prompt"],
    [[[1, 2], []], "prompt[1]"],
    [[[1, -2]], "prompt[1]"],
    [["Once", long], "prompt[1]"],
    [[[1, 2], [1, 100000]], "prompt[1][1]"],
  ];
  for (const [prompt, param] of cases) {
    await assert.rejects(
      client.completions.create({
        model: "stories260K",
        prompt: prompt as string[],
        max_tokens: 4,
      }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError, String(e));
        assert.equal(e.param, param, `${JSON.stringify(prompt).slice(0, 40)}: ${e.message}`);
        return true;
      },
    );
  }
  const ids = await client.completions.create({
    model: "stories260K",
    prompt: [[1, 403], [1, 407, 300]],
    max_tokens: 3,
  });
  assert.equal(ids.choices.length, 2);
  assert.equal(ids.usage!.prompt_tokens, 5);
});
