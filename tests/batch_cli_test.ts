/**
 * `deno task batch` as a user runs it: a child process answering a file of OpenAI batch
 * requests, each result equal to what the server answers over HTTP to the same request.
 */
import assert from "node:assert/strict";
import { runRill } from "./_cli_run.ts";
import { startServer, STORIES_ARCHIVE, STORIES_TOKENIZER } from "./_serve_harness.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const MODEL = ["--model", STORIES_ARCHIVE, "--tokenizer", STORIES_TOKENIZER];
/** The TypeScript path and the id the test server uses: answers equal to the bit. */
const SAME_AS_HARNESS = [...MODEL, "--model-id", "stories260K", "--threads", "0"];

const CHAT = {
  model: "stories260K",
  messages: [{ role: "user" as const, content: "Once upon a time" }],
  max_tokens: 12,
  temperature: 0,
};
const STORIES = ["The cat", "A little girl", "One day", "The dog ran"];

Deno.test("batch: every line's result, in order, is the server's answer to it over HTTP", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const requests = [
      { custom_id: "chat", method: "POST", url: "/v1/chat/completions", body: CHAT },
      ...STORIES.map((prompt, i) => ({
        custom_id: `story-${i}`,
        method: "POST",
        url: "/v1/completions",
        body: { prompt, max_tokens: 10 + i, temperature: 0 },
      })),
      { custom_id: "embed", method: "POST", url: "/v1/embeddings", body: { input: "hello" } },
      { custom_id: "too-long", method: "POST", url: "/v1/completions", body: { max_tokens: 1 } },
    ];
    const input = `${dir}/requests.jsonl`;
    await Deno.writeTextFile(
      input,
      [...requests.map((r) => JSON.stringify(r)), "", "{broken"].join("\n") + "\n",
    );
    const output = `${dir}/results.jsonl`;
    const run = await runRill(
      ["batch", input, "--output", output, ...SAME_AS_HARNESS, "--max-batch", "3"],
      { limitMs: 120_000 },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      /rill batch: 8 requests \(6 answered 200, 1 answered 400, 1 refused\); wrote /,
    );
    // Progress at each tenth of the file: eight lines, each a tenth or more.
    const progress = [...run.stderr.matchAll(/rill batch: (\d+)\/8 done in [\d.]+ s/g)];
    assert.deepEqual(progress.map((m) => Number(m[1])), [1, 2, 3, 4, 5, 6, 7, 8]);
    const results: Json[] = (await Deno.readTextFile(output)).trimEnd().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(
      results.map((r) => r.custom_id),
      [...requests.map((r) => r.custom_id), null],
    );
    assert.ok(results.every((r) => /^batch_req_[0-9a-f]{32}$/.test(r.id)));

    await using server = await startServer();
    const client = server.client();
    const chat = await client.chat.completions.create(CHAT);
    assert.equal(results[0].response.status_code, 200);
    assert.match(results[0].response.request_id, /^req_/);
    assert.equal(
      results[0].response.body.choices[0].message.content,
      chat.choices[0]!.message.content,
    );
    assert.deepEqual(results[0].response.body.usage, chat.usage);
    for (const [i, prompt] of STORIES.entries()) {
      const expected = await client.completions.create({
        model: "stories260K",
        prompt,
        max_tokens: 10 + i,
        temperature: 0,
      });
      const body = results[1 + i].response.body;
      assert.equal(body.choices[0].text, expected.choices[0]!.text, prompt);
      assert.deepEqual(body.usage, expected.usage);
    }
    const embedding = await client.embeddings.create({ model: "stories260K", input: "hello" });
    assert.deepEqual(results[5].response.body.data[0].embedding, embedding.data[0]!.embedding);
    // A request the server refuses is a result too, with its status and error.
    assert.equal(results[6].response.status_code, 400);
    assert.equal(results[6].response.body.error.param, "prompt");
    assert.equal(results[7].response, null);
    assert.match(results[7].error.message, /requests\.jsonl:9: not JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("batch: usage errors exit 2, an unreadable file or a model that does not load exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const noOutput = await runRill(["batch", `${dir}/in.jsonl`, ...MODEL]);
    assert.equal(noOutput.code, 2);
    assert.match(noOutput.stderr, /rill batch: --output is missing/);
    const noInput = await runRill(["batch", "--output", `${dir}/out.jsonl`, ...MODEL]);
    assert.equal(noInput.code, 2);
    assert.match(noInput.stderr, /the requests file is missing/);
    const missing = await runRill(["batch", `${dir}/in.jsonl`, "--output", `${dir}/o`, ...MODEL]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*in\.jsonl: .*No such file/);
    await Deno.writeTextFile(`${dir}/in.jsonl`, "");
    const unwritable = await runRill([
      "batch",
      `${dir}/in.jsonl`,
      "--output",
      `${dir}/absent/out.jsonl`,
      ...MODEL,
    ]);
    assert.equal(unwritable.code, 1);
    assert.match(unwritable.stderr, /cannot write .*absent\/out\.jsonl/);
    assert.doesNotMatch(unwritable.stderr, /weights/);
    const badModel = await runRill([
      "batch",
      `${dir}/in.jsonl`,
      "--output",
      `${dir}/o`,
      "--model",
      `${dir}/absent.nnef.tar`,
    ]);
    assert.equal(badModel.code, 1);
    assert.match(badModel.stderr, /absent\.nnef\.tar/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
