import assert from "node:assert/strict";
import type OpenAI from "openai";
import { startServer, STORIES_ARCHIVE, storiesService } from "./_serve_harness.ts";
import { loadModel } from "../src/graph/load_model.ts";
import { modelScheduler } from "../src/engine/load_service.ts";
import { InferenceService } from "../src/engine/service.ts";

const MODEL = "stories260K";
const STORY = "Once upon a time, there was a little girl named Lily.";

/** A greedy completion of `prompt` with each token's log-probability and best alternative. */
async function greedy(client: OpenAI, prompt: string | number[], maxTokens: number) {
  const answer = await client.completions.create({
    model: MODEL,
    prompt,
    max_tokens: maxTokens,
    temperature: 0,
    logprobs: 1,
  });
  return answer.choices[0]!;
}

/** The prompt's token ids, as the server reads them. */
async function tokenize(url: string, text: string): Promise<number[]> {
  const response = await fetch(`${url}/tokenize`, {
    method: "POST",
    body: JSON.stringify({ model: MODEL, prompt: text }),
  });
  return (await response.json()).tokens;
}

Deno.test("echo with logprobs scores the prompt as lm-evaluation-harness reads it", async () => {
  await using server = await startServer();
  const client = server.client();
  const context = await tokenize(server.url, STORY);
  const generated = await greedy(client, context, 12);
  const continuation = await tokenize(server.url, STORY + generated.text);
  assert.deepEqual(continuation.slice(0, context.length), context);
  // lm-evaluation-harness's `local-completions` loglikelihood request: token ids, a batch.
  const other = context.slice(0, 6);
  const scored = await client.completions.create({
    model: MODEL,
    prompt: [continuation, other],
    echo: true,
    logprobs: 1,
    max_tokens: 1,
    temperature: 0,
    seed: 1234,
  });
  const [choice, second] = scored.choices;
  const logprobs = choice!.logprobs!;
  assert.equal(logprobs.tokens!.length, continuation.length + 1);
  assert.equal(logprobs.token_logprobs![0], null);
  assert.equal(logprobs.top_logprobs![0], null);
  // What the harness sums: the continuation's tokens, the completion's one left out.
  const ctxlen = context.length;
  const continuationLogprobs = logprobs.token_logprobs!.slice(ctxlen, -1);
  assert.deepEqual(continuationLogprobs, generated.logprobs!.token_logprobs!.slice(0, 12));
  // A greedy continuation: each token is its position's most likely one.
  logprobs.top_logprobs!.slice(ctxlen, -1).forEach((top, i) => {
    assert.equal(Math.max(...Object.values(top!)), continuationLogprobs[i]);
  });
  // The text is the prompt's, then the completion's; offsets index into it.
  const promptText = STORY + generated.text;
  assert.ok(choice!.text.startsWith(promptText), choice!.text);
  const offsets = logprobs.text_offset!;
  assert.equal(offsets.at(-1), promptText.length);
  offsets.slice(1).forEach((at, i) => assert.ok(at >= offsets[i]!, `offset ${i + 1}`));
  assert.equal(promptText.slice(offsets[1]!, offsets[2]!), logprobs.tokens![1]!.trimStart());
  assert.equal(second!.logprobs!.tokens!.length, other.length + 1);
  assert.equal(scored.usage!.prompt_tokens, continuation.length + other.length);
  assert.equal(
    scored.usage!.prompt_tokens_details?.cached_tokens,
    0,
    "a scored prompt is computed",
  );
});

Deno.test("echo sends the prompt back first, whole and streamed, with or without logprobs", async () => {
  await using server = await startServer();
  const client = server.client();
  const request = { model: MODEL, prompt: STORY, max_tokens: 8, temperature: 0 } as const;
  const plain = (await client.completions.create(request)).choices[0]!.text;
  for (const logprobs of [undefined, 2]) {
    const asked = { ...request, echo: true, ...(logprobs === undefined ? {} : { logprobs }) };
    const whole = (await client.completions.create(asked)).choices[0]!;
    assert.equal(whole.text, STORY + plain);
    const chunks = [];
    for await (const chunk of await client.completions.create({ ...asked, stream: true })) {
      chunks.push(chunk.choices[0]!);
    }
    assert.equal(chunks[0]!.text, STORY, "the prompt comes first, in a chunk of its own");
    assert.equal(chunks.map((c) => c.text).join(""), whole.text);
    if (logprobs === undefined) {
      assert.equal(whole.logprobs, null);
      continue;
    }
    // The streamed chunks' logprobs add up to the whole answer's.
    const joined = {
      tokens: chunks.flatMap((c) => c.logprobs?.tokens ?? []),
      token_logprobs: chunks.flatMap((c) => c.logprobs?.token_logprobs ?? []),
      top_logprobs: chunks.flatMap((c) => c.logprobs?.top_logprobs ?? []),
      text_offset: chunks.flatMap((c) => c.logprobs?.text_offset ?? []),
    };
    assert.deepEqual(joined, whole.logprobs);
    const prompt = await tokenize(server.url, STORY);
    assert.equal(chunks[0]!.logprobs!.tokens!.length, prompt.length);
  }
});

Deno.test("echo with max_tokens 0 scores the prompt alone; without echo, 0 is refused", async () => {
  await using server = await startServer();
  const client = server.client();
  const prompt = await tokenize(server.url, STORY);
  const scored = await client.completions.create({
    model: MODEL,
    prompt: STORY,
    echo: true,
    logprobs: 0,
    max_tokens: 0,
  });
  const choice = scored.choices[0]!;
  assert.equal(choice.text, STORY);
  assert.equal(choice.finish_reason, "length");
  assert.equal(choice.logprobs!.token_logprobs!.length, prompt.length);
  assert.deepEqual(choice.logprobs!.top_logprobs!.slice(1), prompt.slice(1).map(() => ({})));
  assert.equal(scored.usage!.completion_tokens, 0);
  const refused = await fetch(`${server.url}/v1/completions`, {
    method: "POST",
    body: JSON.stringify({ model: MODEL, prompt: STORY, max_tokens: 0 }),
  });
  assert.equal(refused.status, 400);
  assert.equal((await refused.json()).error.param, "max_tokens");
});

Deno.test("echo with logprobs on a model that cannot score prompts is a 400 naming echo", async () => {
  const stories = await storiesService();
  const graph = await loadModel(STORIES_ARCHIVE);
  // The same model, served without saying it scores prompts.
  const unscored = new InferenceService({
    modelId: MODEL,
    tokenizer: stories.tokenizer,
    renderChat: (messages) => stories.renderChat(messages),
    model: modelScheduler(graph),
  });
  await using server = await startServer({}, unscored);
  const ask = (body: object) =>
    fetch(`${server.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, prompt: STORY, max_tokens: 2, ...body }),
    });
  const refused = await ask({ echo: true, logprobs: 1 });
  assert.equal(refused.status, 400);
  const error = (await refused.json()).error;
  assert.equal(error.param, "echo");
  assert.match(error.message, /gives no log-probabilities of a prompt's tokens/);
  const echoed = await ask({ echo: true });
  assert.equal(echoed.status, 200);
  assert.ok((await echoed.json()).choices[0].text.startsWith(STORY));
});
