/**
 * `deno serve mod.ts` as Deno Deploy runs it: every permission but writing files and starting
 * subprocesses, no other flag, the model read from object storage (a loopback server here).
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startTestServer, type TestServer } from "../src/storage/_test_server.ts";
import { Child } from "./_child.ts";
import { writeTinySmolLM2Archive } from "./_hub.ts";

const DEPLOY_FLAGS = ["--allow-all", "--deny-write", "--deny-run"];

/** The tiny SmolLM2 archive served over HTTP with Range support, as object storage would. */
async function withStoredModel(body: (url: string, store: TestServer) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "rill_deploy_" });
  const store = startTestServer({
    "/models/tiny.nnef.tar": await Deno.readFile(await writeTinySmolLM2Archive(dir)),
  });
  try {
    await body(`${store.url}/models/tiny.nnef.tar`, store);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** `deno serve [flags] mod.ts` on a free port, started; waits until it listens. */
async function denoServe(
  flags: string[],
  env: Record<string, string>,
): Promise<{ child: Child; url: string }> {
  const child = new Child(["serve", ...flags, "--host", "127.0.0.1", "--port", "0", "mod.ts"], env);
  const [, url] = await child.waitFor(/Listening on (http:\/\/127\.0\.0\.1:\d+)/);
  return { child, url: url!.replace(/\/$/, "") };
}

/** The greedy answer to one chat question. */
async function ask(client: OpenAI): Promise<string> {
  const answer = await client.chat.completions.create({
    model: "tiny.nnef.tar",
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello!" }],
    max_tokens: 24,
    temperature: 0,
  });
  return answer.choices[0]!.message.content!;
}

Deno.test("deno serve mod.ts as on Deno Deploy loads from object storage at start, on worker threads, answers, and drains on SIGINT", async () => {
  await withStoredModel(async (model, store) => {
    const env = { MODEL: model, RILL_MEMORY_LIMIT: "768M", RILL_SHUTDOWN_GRACE_MS: "0" };
    const threaded = await denoServe(DEPLOY_FLAGS, env);
    await using _threaded = threaded.child;
    await threaded.child.waitFor(/rill: ready/);
    const log = threaded.child.log;
    assert.ok(store.requests.length > 0);
    assert.match(
      log,
      /loaded model 'tiny\.nnef\.tar' from http:\/\/127\.0\.0\.1:\d+\/models\/tiny\.nnef\.tar \(url\)/,
    );
    assert.match(log, /tokenizer from .*\(tokenizer\.json\)/);
    const threads = Number(/kernels on (\d+) threads?/.exec(log)?.[1]);
    if (navigator.hardwareConcurrency > 1) assert.ok(threads > 1, log);
    assert.match(
      log,
      /memory: limit 768 MiB \(RILL_MEMORY_LIMIT\), weights \d+\.\d MiB, process \d+ MiB, KV cache budget \d+ MiB/,
    );
    const client = new OpenAI({ baseURL: `${threaded.url}/v1`, apiKey: "none", maxRetries: 0 });
    const text = await ask(client);
    assert.ok(text.length > 0);

    // The same service in a runtime without Worker (`deno serve` ignores --preload, so it runs
    // as `rill serve`): one thread, the same greedy answer.
    {
      await using single = new Child([
        "run",
        ...DEPLOY_FLAGS,
        "--preload",
        "tests/_no_worker.ts",
        "cli/main.ts",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
      ], env);
      const [, url] = await single.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      await single.waitFor(/rill: ready/);
      assert.match(single.log, /kernels on 1 thread,/);
      const singleClient = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
      assert.equal(await ask(singleClient), text);
    }
    console.log(
      `threads with Worker: ${threads}, without: 1; greedy answer ${JSON.stringify(text)}`,
    );

    const stream = await client.chat.completions.create({
      model: "tiny.nnef.tar",
      messages: [{ role: "user", content: "Tell me a long story." }],
      max_tokens: 400,
      temperature: 0,
      stream: true,
    });
    const { error, signalled } = await threaded.child.signalMidStream(stream, "SIGINT");
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.code, "server_shutting_down");
    const status = await threaded.child.exited();
    console.log(`SIGINT to exit: ${(performance.now() - signalled).toFixed(0)} ms`);
    assert.equal(status.code, 0, threaded.child.log);
    assert.match(threaded.child.log, /SIGINT: not admitting requests/);
    assert.match(threaded.child.log, /rill: stopped/);
  });
});

Deno.test("deno serve mod.ts refuses at start a model that does not fit in the memory limit", async () => {
  await withStoredModel(async (model) => {
    const { child } = await denoServe(DEPLOY_FLAGS, { MODEL: model, RILL_MEMORY_LIMIT: "150M" });
    const status = await child.exited();
    assert.equal(status.code, 1, child.log);
    assert.match(
      child.log,
      /rill: Model 'tiny\.nnef\.tar' does not fit in the 150 MiB memory limit \(RILL_MEMORY_LIMIT\): it needs \d+ MiB, that is \d+\.\d MiB of weights \+ \d+\.\d MiB of KV cache for one 511-token sequence \(\d+ bytes per position\) \+ \d+ MiB for the process itself; raise the limit/,
    );
  });
});

Deno.test("deno serve mod.ts without the permissions it needs stops at start, naming the flags", async () => {
  const bare = new Child(["serve", "--host", "127.0.0.1", "--port", "0", "mod.ts"], {});
  assert.equal((await bare.exited()).code, 1, bare.log);
  assert.match(
    bare.log,
    /deno serve mod\.ts lacks permissions; start it as\n {2}deno serve --allow-env --allow-read mod\.ts\n/,
  );
  await withStoredModel(async (model) => {
    const host = new URL(model).host;
    const child = new Child(
      ["serve", "--allow-env", "--allow-read", "--host", "127.0.0.1", "--port", "0", "mod.ts"],
      { MODEL: model },
    );
    assert.equal((await child.exited()).code, 1, child.log);
    assert.match(child.log, new RegExp(`deno serve --allow-net=${host} mod\\.ts\\n`));
    assert.match(child.log, new RegExp(`--allow-net=${host} {2}MODEL's URL`));
  });
});
