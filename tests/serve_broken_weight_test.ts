/**
 * A weight that fails after the service started answering (it arrives late over HTTP and does
 * not match the archive index's sha256): the request waiting for it fails with a clear 5xx, the
 * process stays up, `/ready` says failed (without quoting the reason), and later requests get
 * a 503.
 */
import assert from "node:assert/strict";
import { createServer, readServeConfig } from "../cli/serve.ts";
import { createApp, ServingState } from "../routes/mod.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { readMembers, writeIndexedTar } from "./_archives.ts";
import { STORIES_ARCHIVE, STORIES_TOKENIZER } from "./_serve_harness.ts";

function completion(url: string): Promise<Response> {
  return fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "stories", prompt: "Once upon a time", max_tokens: 4 }),
  });
}

Deno.test("a weight failing its sha256 after /ready fails its requests with a 5xx and leaves the process up", async () => {
  const dir = await Deno.makeTempDir();
  const members = await readMembers(STORIES_ARCHIVE);
  const tar = await writeIndexedTar(`${dir}/m.nnef.tar`, members);
  // The last weight placed as it arrives (more than 4096 items), one byte of its payload flipped.
  const index = JSON.parse(new TextDecoder().decode(tar.subarray(512, tar.indexOf(10, 512))));
  const last = (index.members as { name: string; offset: number; size: number }[])
    .filter((m) => m.name.endsWith(".dat") && m.size > 40_000)
    .sort((a, b) => a.offset - b.offset).at(-1)!;
  tar[last.offset + last.size - 1]! ^= 0xff;
  // About two seconds for the whole archive: the graph is built long before the last weight.
  const source = startTestServer({ "/m.nnef.tar": tar }, { bytesPerSecond: tar.length / 2 });
  const lines: string[] = [];
  const server = createServer({
    ...readServeConfig([], () => undefined),
    model: `${source.url}/m.nnef.tar`,
    tokenizer: STORIES_TOKENIZER,
    modelId: "stories",
    host: "127.0.0.1",
    port: 0,
    threads: 0,
  }, (line) => lines.push(line));
  const http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, server.fetch);
  const url = `http://127.0.0.1:${http.addr.port}`;
  try {
    await server.loaded;
    const ready = await fetch(`${url}/ready`);
    assert.equal(ready.status, 200, await ready.text());
    const first = await completion(url);
    const body = await first.json();
    assert.ok(first.status >= 500, JSON.stringify(body));
    assert.match(body.error.message, new RegExp(`member '${last.name}' has sha256 [0-9a-f]{64}`));
    const failed = await fetch(`${url}/ready`);
    assert.equal(failed.status, 503);
    assert.deepEqual(await failed.json(), {
      status: "failed",
      error: "The model failed to load; the server log says why",
    });
    const later = await completion(url);
    assert.equal(later.status, 503);
    assert.equal((await later.json()).error.code, "model_load_failed");
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    assert.ok(
      lines.some((l) => l.includes("loading the weights failed") && l.includes(last.name)),
      lines.join("\n"),
    );
  } finally {
    await http.shutdown();
    await server.loaded.catch(() => {});
    await source.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("/ready and the 503 of a failed load keep the reason, which may quote a file, to the log", async () => {
  const state = new ServingState();
  const reason = new SyntaxError(`m.tar: member tokenizer.json is not valid JSON: "sk-secret`);
  await assert.rejects(() => state.load(Promise.reject(reason)));
  const app = createApp(state);
  const ready = await app.fetch(new Request("http://localhost/ready"));
  assert.equal(ready.status, 503);
  const readyText = await ready.text();
  assert.match(readyText, /"status":"failed"/);
  const answer = await app.fetch(
    new Request("http://localhost/v1/models", { headers: { authorization: "Bearer x" } }),
  );
  assert.equal(answer.status, 503);
  const answerText = await answer.text();
  assert.match(answerText, /model_load_failed/);
  for (const text of [readyText, answerText]) assert.doesNotMatch(text, /secret|tokenizer\.json/);
});
