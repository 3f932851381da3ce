import assert from "node:assert/strict";
import type OpenAI from "openai";
import { metricValue, startServer } from "./_serve_harness.ts";

const CHAT = [{ role: "user" as const, content: "Tell me a story about a dog." }];

/** The answer's text and usage for `prediction` (none: undefined), greedy unless `seed`. */
async function answer(
  client: OpenAI,
  prediction: string | undefined,
  options: { seed?: number; n?: number } = {},
) {
  const completion = await client.chat.completions.create({
    model: "stories260K",
    messages: CHAT,
    max_tokens: 60,
    ...(options.seed === undefined ? { temperature: 0 } : { temperature: 1, seed: options.seed }),
    ...(options.n === undefined ? {} : { n: options.n }),
    ...(prediction === undefined ? {} : { prediction: { type: "content", content: prediction } }),
  });
  const details = completion.usage!.completion_tokens_details!;
  return {
    texts: completion.choices.map((c) => c.message.content!),
    details,
    accepted: details.accepted_prediction_tokens!,
    rejected: details.rejected_prediction_tokens!,
    tokens: completion.usage!.completion_tokens,
  };
}

Deno.test("chat completions with a prediction: the same answer, the predicted tokens it took counted, whole and streamed", async () => {
  await using server = await startServer();
  const client = server.client();
  const plain = await answer(client, undefined);
  const text = plain.texts[0]!;
  assert.deepEqual(plain.details, {
    reasoning_tokens: 0,
    accepted_prediction_tokens: 0,
    rejected_prediction_tokens: 0,
  });
  // Predicted exactly: guessing starts once the answer's first 3 tokens are found in the
  // prediction (which, tokenized alone, starts with an extra space here), then each step
  // takes 7 guesses and the token after them, all but the last token, which is never fed.
  const counted = () =>
    Promise.all(
      ["accepted", "rejected"].map((k) =>
        metricValue(server.url, `rill_prediction_${k}_tokens_total`)
      ),
    );
  const before = await counted();
  const exact = await answer(client, text);
  const after = await counted();
  assert.deepEqual([after[0]! - before[0]!, after[1]! - before[1]!], [exact.accepted, 0]);
  assert.deepEqual(exact.texts, plain.texts);
  assert.equal(exact.tokens, plain.tokens);
  assert.ok(
    exact.accepted >= Math.floor((plain.tokens - 4) * 7 / 8),
    JSON.stringify(exact.details),
  );
  assert.equal(exact.rejected, 0);
  // An edited prediction: a word changed halfway, and more text than the answer makes.
  const words = text.split(" ");
  const middle = Math.floor(words.length / 2);
  words[middle] = words[middle] === "cat" ? "mouse" : "cat";
  const edited = await answer(client, words.join(" ") + " And they lived happily ever after.");
  assert.deepEqual(edited.texts, plain.texts);
  assert.ok(edited.accepted > plain.tokens / 2, JSON.stringify(edited.details));
  assert.ok(edited.rejected > 0);

  const stream = await client.chat.completions.create({
    model: "stories260K",
    messages: CHAT,
    max_tokens: 60,
    temperature: 0,
    prediction: { type: "content", content: [{ type: "text", text }] },
    stream: true,
    stream_options: { include_usage: true },
  });
  let streamed = "";
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    streamed += chunk.choices[0]?.delta.content ?? "";
    usage = chunk.usage ?? usage;
  }
  assert.equal(streamed, text);
  assert.deepEqual(usage!.completion_tokens_details, exact.details);
});

Deno.test("chat completions with a prediction: a sampled answer with a seed is the one it is without, each of n choices", async () => {
  await using server = await startServer();
  const client = server.client();
  const plain = await answer(client, undefined, { seed: 11, n: 2 });
  const predicted = await answer(client, plain.texts[0], { seed: 11, n: 2 });
  assert.deepEqual(predicted.texts, plain.texts);
  assert.ok(predicted.accepted > 0);
});

Deno.test("chat completions with a prediction: the same log-probabilities, each token's from the logits after exactly the tokens before it", async () => {
  await using server = await startServer();
  const client = server.client();
  const ask = (prediction?: string) =>
    client.chat.completions.create({
      model: "stories260K",
      messages: CHAT,
      max_tokens: 30,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
      ...(prediction === undefined ? {} : { prediction: { type: "content", content: prediction } }),
    });
  const plain = await ask();
  const predicted = await ask(plain.choices[0]!.message.content!);
  assert.ok(predicted.usage!.completion_tokens_details!.accepted_prediction_tokens! > 0);
  assert.deepEqual(predicted.choices[0]!.logprobs, plain.choices[0]!.logprobs);
});

Deno.test("chat completions with a prediction far longer than the answer: the same answer", async () => {
  await using server = await startServer();
  const client = server.client();
  const plain = await answer(client, undefined);
  // Under the body limit; read no further than the 60 tokens of the answer can reach.
  const long = plain.texts[0]! + " and then".repeat(350_000);
  const predicted = await answer(client, long);
  assert.deepEqual(predicted.texts, plain.texts);
});

Deno.test("chat completions refuse a prediction that is not content, naming the field", async () => {
  await using server = await startServer();
  const cases: [unknown, string][] = [
    ["the text", "prediction"],
    [{ content: "the text" }, "prediction.type"],
    [{ type: "text", content: "the text" }, "prediction.type"],
    [{ type: "content", content: 7 }, "prediction.content"],
    [
      { type: "content", content: [{ type: "image_url", image_url: "x" }] },
      "prediction.content[0]",
    ],
  ];
  for (const [prediction, param] of cases) {
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ messages: CHAT, max_tokens: 4, prediction }),
    });
    assert.equal(response.status, 400, JSON.stringify(prediction));
    const { error } = await response.json();
    assert.equal(error.param, param, error.message);
  }
});
