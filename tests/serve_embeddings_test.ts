import assert from "node:assert/strict";
import OpenAI from "openai";
import { OpenAIEmbeddings } from "@langchain/openai";
import { metricValue, startServer, storiesService } from "./_serve_harness.ts";
import { hiddenModel } from "../src/engine/hidden_model.ts";
import { loadModel } from "../src/graph/load_model.ts";
import { Session } from "../src/engine/session.ts";
import { fixture } from "./_stories260k.ts";

const TEXTS = ["Once upon a time", "The little dog ran home", "Once upon a time"];

function length(v: readonly number[]): number {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}

Deno.test("embeddings through the openai client: the last position's hidden state at length 1, per input", async () => {
  await using server = await startServer();
  const client = server.client();
  const answer = await client.embeddings.create({ model: "stories260K", input: TEXTS });
  assert.equal(answer.object, "list");
  assert.deepEqual(answer.data.map((d) => d.index), [0, 1, 2]);
  const vectors = answer.data.map((d) => d.embedding);
  for (const v of vectors) {
    assert.equal(v.length, 64);
    assert.ok(Math.abs(length(v) - 1) < 1e-6);
  }
  assert.deepEqual(vectors[2], vectors[0]);
  assert.notDeepEqual(vectors[1], vectors[0]);
  // The state the TypeScript graph computes for the same ids, scaled the same way.
  const service = await storiesService();
  const ids = service.encodePrompt(TEXTS[1]!);
  const model = await loadModel(fixture("nnef/stories260K_f32.nnef.tgz"));
  const state = new Session(hiddenModel(model)!).prefill(ids);
  const scale = 1 / length(Array.from(state));
  const worst = Math.max(...vectors[1]!.map((x, i) => Math.abs(x - state[i]! * scale)));
  assert.ok(worst < 1e-5, `worst ${worst}`);
  assert.equal(
    answer.usage.prompt_tokens,
    TEXTS.reduce((n, t) => n + service.encodePrompt(t).length, 0),
  );
  // base64 is the same floats' little-endian bytes; token ids embed as their text does.
  const raw = await fetch(`${server.url}/v1/embeddings`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ input: [ids], encoding_format: "base64" }),
  }).then((r) => r.json());
  const bytes = Uint8Array.from(atob(raw.data[0].embedding), (ch) => ch.charCodeAt(0));
  assert.deepEqual(Array.from(new Float32Array(bytes.buffer)), vectors[1]);
  assert.equal(
    await metricValue(server.url, 'rill_requests_total{route="/v1/embeddings",status="200"}'),
    2,
  );
});

Deno.test("embedding requests that cannot be served are a 400 naming the field", async () => {
  await using server = await startServer();
  const client = server.client();
  const long = "Once upon a time there was a cat. ".repeat(80);
  const cases: [Record<string, unknown>, string][] = [
    [{ input: [] }, "input"],
    [{ input: ["a", ""] }, "input[1]"],
    [{ input: ["a", long] }, "input[1]"],
    [{ input: [[1, 100000]] }, "input[1]"],
    [{ input: [[1, 2], [1, -2]] }, "input[1][1]"],
    [{ input: "a", dimensions: 32 }, "dimensions"],
    [{ input: "a", encoding_format: "int8" }, "encoding_format"],
    [{ input: "a", truncate: true }, "truncate"],
  ];
  for (const [body, param] of cases) {
    await assert.rejects(
      client.embeddings.create({ model: "stories260K", ...body } as never),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError, String(e));
        assert.equal(e.param, param, `${JSON.stringify(body).slice(0, 60)}: ${e.message}`);
        return true;
      },
    );
  }
});

Deno.test("many inputs run a batch at a time on a server with no queue, and LangChain's OpenAIEmbeddings gets them", async () => {
  await using server = await startServer({ maxBatch: 2, maxQueue: 0 });
  const texts = Array.from({ length: 40 }, (_, i) => `Story number ${i} was about a cat`);
  const embeddings = new OpenAIEmbeddings({
    model: "stories260K",
    apiKey: "none",
    configuration: { baseURL: `${server.url}/v1` },
    maxRetries: 0,
  });
  const documents = await embeddings.embedDocuments(texts);
  assert.equal(documents.length, 40);
  const client = server.client();
  for (const i of [0, 17, 39]) {
    const one = await client.embeddings.create({ model: "stories260K", input: texts[i]! });
    assert.deepEqual(documents[i], one.data[0]!.embedding);
  }
  assert.deepEqual(await embeddings.embedQuery(texts[5]!), documents[5]);
});
