import assert from "node:assert/strict";
import OpenAI from "openai";
import { startServer } from "./_serve_harness.ts";

/** A greedy completion; vLLM's ending fields given as extra body fields. */
function complete(client: OpenAI, extra: Record<string, unknown>, maxTokens = 400) {
  return client.completions.create({
    model: "stories260K",
    prompt: "Once upon a time, there was a little girl named Lily.",
    max_tokens: maxTokens,
    temperature: 0,
    ...extra,
  });
}

Deno.test("ignore_eos, min_tokens and stop_token_ids decide where a greedy story ends", async () => {
  await using server = await startServer();
  const client = server.client();
  const story = await complete(client, {}, 400);
  // The model ends its story with the end-of-sequence token well before the limit.
  assert.equal(story.choices[0]!.finish_reason, "stop");
  const length = story.usage!.completion_tokens;
  assert.ok(length < 390, `${length} tokens`);

  const on = await complete(client, { ignore_eos: true }, length + 20);
  assert.equal(on.choices[0]!.finish_reason, "length");
  assert.equal(on.usage!.completion_tokens, length + 20);
  assert.ok(on.choices[0]!.text.startsWith(story.choices[0]!.text));

  const longer = await complete(client, { min_tokens: length + 5 }, 400);
  assert.ok(longer.usage!.completion_tokens >= length + 5);
  assert.ok(longer.choices[0]!.text.startsWith(story.choices[0]!.text));

  // Ending at the id of the story's fourth token leaves its first three.
  const ids = await fetch(`${server.url}/tokenize`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: story.choices[0]!.text }),
  }).then((r) => r.json());
  const fourth = ids.tokens[4] as number;
  const cut = await complete(client, { stop_token_ids: [fourth] });
  assert.equal(cut.choices[0]!.finish_reason, "stop");
  assert.ok(cut.usage!.completion_tokens <= 3, `${cut.usage!.completion_tokens} tokens`);
  assert.ok(story.choices[0]!.text.startsWith(cut.choices[0]!.text));
});

Deno.test("stop_token_ids outside the vocabulary, or not ids, are a 400 naming the entry", async () => {
  await using server = await startServer();
  const client = server.client();
  for (
    const [ids, param] of [
      [[1, 100000], "stop_token_ids[1]"],
      [[-1], "stop_token_ids[0]"],
      ["2", "stop_token_ids"],
    ] as const
  ) {
    await assert.rejects(
      complete(client, { stop_token_ids: ids }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === param,
    );
  }
});
