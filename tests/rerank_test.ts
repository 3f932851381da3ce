/**
 * `POST /v1/rerank` over HTTP, as Jina's, Cohere's and llama.cpp's rerank clients post (JSON with
 * `fetch`): each relevance is the model's probability of "yes" over "no" in Qwen3-Reranker's
 * prompt, checked against the log-probabilities `/v1/completions` reports for the same prompt.
 */
import assert from "node:assert/strict";
import { startServer } from "./_serve_harness.ts";
import { smolLM2Service } from "./_smollm2.ts";
import { DEFAULT_INSTRUCTION, rerankPrompt } from "../routes/rerank.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

async function post(url: string, body: object): Promise<{ status: number; json: Json }> {
  const response = await fetch(url, { method: "POST", body: JSON.stringify(body) });
  return { status: response.status, json: await response.json() };
}

const QUERY = "Where do pandas live?";
const DOCUMENTS = [
  "The giant panda lives in the mountains of central China.",
  "Copper is a good conductor of electricity.",
  "Bamboo forests are the home of most wild pandas.",
];

Deno.test("rerank: each document's relevance is P(yes) over P(no) in Qwen3-Reranker's prompt, sorted, cut to top_n", async () => {
  const service = await smolLM2Service();
  await using server = await startServer({}, service);
  const { status, json } = await post(`${server.url}/v1/rerank`, {
    model: service.modelId,
    query: QUERY,
    documents: DOCUMENTS,
  });
  assert.equal(status, 200, JSON.stringify(json));
  assert.equal(json.results.length, 3);
  assert.deepEqual(json.results.map((r: Json) => r.index).sort(), [0, 1, 2]);
  const scores = json.results.map((r: Json) => r.relevance_score);
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  assert.ok(json.results.every((r: Json) => r.document === undefined));

  // The same probability from the log-probabilities of "yes" and of "no" as next tokens.
  const [yes, no] = ["yes", "no"].map((w) => service.tokenizer.encode(w, { addBos: false })[0]!);
  const logprob = async (prompt: string, id: number) => {
    const answer = await server.client().completions.create({
      model: service.modelId,
      prompt,
      max_tokens: 1,
      temperature: 0,
      logprobs: 0,
      logit_bias: { [id]: 100 },
    });
    return answer.choices[0]!.logprobs!.token_logprobs![0]!;
  };
  for (const result of json.results) {
    const prompt = rerankPrompt(DEFAULT_INSTRUCTION, QUERY, DOCUMENTS[result.index]!);
    const [ly, ln] = [await logprob(prompt, yes!), await logprob(prompt, no!)];
    const expected = Math.exp(ly) / (Math.exp(ly) + Math.exp(ln));
    assert.ok(
      Math.abs(result.relevance_score - expected) < 1e-5,
      `${result.relevance_score} != ${expected}`,
    );
  }
  const prompts = DOCUMENTS.map((d) =>
    service.encodePrompt(rerankPrompt(DEFAULT_INSTRUCTION, QUERY, d)).length
  );
  assert.equal(json.usage.prompt_tokens, prompts.reduce((a, b) => a + b, 0));

  // llama.cpp's path and TEI's field names, documents as objects, top_n, the text returned.
  const top = await post(`${server.url}/rerank`, {
    query: QUERY,
    texts: DOCUMENTS.map((text) => ({ text })),
    top_n: 2,
    return_text: true,
  });
  assert.equal(top.status, 200);
  assert.deepEqual(
    top.json.results.map((r: Json) => [r.index, r.document.text]),
    json.results.slice(0, 2).map((r: Json) => [r.index, DOCUMENTS[r.index]]),
  );
  // vLLM's default top_n, 0: all of them.
  const all = await post(`${server.url}/v1/rerank`, {
    query: QUERY,
    documents: DOCUMENTS,
    top_n: 0,
  });
  assert.deepEqual(all.json.results, json.results);
  // Another instruction asks another question.
  const other = await post(`${server.url}/v1/rerank`, {
    query: QUERY,
    documents: DOCUMENTS,
    instruction: "Given a question, find a passage about metals",
  });
  assert.notDeepEqual(
    other.json.results.map((r: Json) => r.relevance_score),
    json.results.map((r: Json) => r.relevance_score),
  );
});

Deno.test("rerank refuses what it cannot rank, naming the field, and a model without yes and no tokens", async () => {
  const service = await smolLM2Service();
  await using server = await startServer({}, service);
  const refused = async (body: object, param: string, pattern: RegExp) => {
    const { status, json } = await post(`${server.url}/v1/rerank`, body);
    assert.equal(status, 400, JSON.stringify(body));
    assert.equal(json.error.param, param);
    assert.match(json.error.message, pattern);
  };
  await refused({ documents: ["a"] }, "query", /Missing required field 'query'/);
  await refused({ query: "q", documents: [] }, "documents", /non-empty array/);
  await refused({ query: "q", documents: ["a", 3] }, "documents[1]", /a text or \{"text"/);
  await refused({ query: "q", documents: ["a"], top_n: -1 }, "top_n", /between 0/);
  await refused(
    { query: "q", documents: ["x".repeat(10_000)] },
    "documents[0]",
    /maximum context length/,
  );
  // stories260K spells "yes" and "no" in two tokens each.
  await using stories = await startServer();
  const { status, json } = await post(`${stories.url}/rerank`, { query: "q", documents: ["a"] });
  assert.equal(status, 400);
  assert.match(json.error.message, /no single tokens for "yes" and "no"/);
});

Deno.test("vLLM's score API gives the rerank relevance of text_1 against each text_2, or of pairs", async () => {
  const service = await smolLM2Service();
  await using server = await startServer({}, service);
  const ranked = (await post(`${server.url}/v1/rerank`, { query: QUERY, documents: DOCUMENTS }))
    .json;
  const byIndex = new Map(ranked.results.map((r: Json) => [r.index, r.relevance_score]));
  const one = await post(`${server.url}/v1/score`, {
    model: service.modelId,
    text_1: QUERY,
    text_2: DOCUMENTS,
  });
  assert.equal(one.status, 200, JSON.stringify(one.json));
  assert.equal(one.json.object, "list");
  assert.deepEqual(
    one.json.data.map((d: Json) => [d.index, d.object, d.score]),
    DOCUMENTS.map((_, i) => [i, "score", byIndex.get(i)]),
  );
  assert.deepEqual(one.json.usage, {
    prompt_tokens: ranked.usage.prompt_tokens,
    completion_tokens: 0,
    total_tokens: ranked.usage.prompt_tokens,
  });
  // Pair by pair: the same query twice gives the same scores.
  const pairs = await post(`${server.url}/score`, {
    text_1: [QUERY, QUERY],
    text_2: DOCUMENTS.slice(0, 2),
  });
  assert.deepEqual(
    pairs.json.data.map((d: Json) => d.score),
    [byIndex.get(0), byIndex.get(1)],
  );
  const mismatched = await post(`${server.url}/v1/score`, {
    text_1: [QUERY, QUERY],
    text_2: DOCUMENTS,
  });
  assert.equal(mismatched.status, 400);
  assert.equal(mismatched.json.error.param, "text_1");
  assert.match(mismatched.json.error.message, /one text or as many as 'text_2' \(3\), got 2/);
});
