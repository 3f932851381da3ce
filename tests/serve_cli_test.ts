import assert from "node:assert/strict";
import { join } from "node:path";
import OpenAI from "openai";
import { startTestHub, unreachableHub, writeTinySmolLM2 } from "./_hub.ts";
import { STORIES_ARCHIVE, STORIES_TOKENIZER } from "./_serve_harness.ts";
import { readMembers, writeIndexedTar } from "./_archives.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { Child } from "./_child.ts";

const TINY_GGUF = new URL("../../shared/fixtures/gguf/llama-2-tiny-random.gguf", import.meta.url)
  .pathname;

/** Starts `rill serve` on a free port; resolves once it is ready. */
async function serve(
  env: Record<string, string>,
  viaTask = false,
  flags: string[] = [],
): Promise<{ child: Child; url: string }> {
  const args = viaTask
    ? ["task", "serve", "--host", "127.0.0.1", "--port", "0"]
    : ["run", "-A", "cli/main.ts", "serve", "--host", "127.0.0.1", "--port", "0"];
  const child = new Child([...args, ...flags], env);
  const [, url] = await child.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
  await child.waitFor(/rill: ready|rill serve: /, 120_000);
  assert.match(child.log, /rill: ready/, child.log);
  return { child, url: url! };
}

Deno.test("rill serve started as a process answers the OpenAI client and logs what it loaded", async () => {
  const { child, url } = await serve({
    MODEL: STORIES_ARCHIVE,
    TOKENIZER: STORIES_TOKENIZER,
    RILL_API_KEYS: "sk-one,sk-two",
  });
  await using _ = child;
  const loaded =
    /loaded model 'stories260K_f32\.nnef\.tgz' from .*stories260K_f32\.nnef\.tgz \(local\), (\d+) bytes, context \d+ tokens, tokenizer from .*tok512\.bin, (relaxed|simd128) kernels on \d+ threads?, graph in \d+\.\d+ s/
      .exec(child.log);
  assert.ok(loaded, child.log);
  // The weights' bytes, announced up front, are all placed in the end.
  const placed = await child.waitFor(/all weights in place: (\d+) bytes in \d+\.\d+ s/);
  assert.equal(placed[1], loaded[1]);
  assert.doesNotMatch(child.log, /authentication is OFF/);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-two", maxRetries: 0 });
  const answer = await client.chat.completions.create({
    model: "stories260K_f32.nnef.tgz",
    messages: [{ role: "user", content: "Hello" }],
    max_tokens: 8,
    temperature: 0,
  });
  assert.ok(answer.choices[0]!.message.content!.length > 0);
  await child.waitFor(
    new RegExp(`${answer.id} prompt \\d+ \\+ completion \\d+ tokens, finish (stop|length)`),
  );
  // Deno warns, once, when a request whose signal was read completes under the legacy abort
  // (the signal aborting on success too); the next request's line comes after that warning.
  const second = await client.completions.create({
    model: "stories260K_f32.nnef.tgz",
    prompt: "Once",
    max_tokens: 2,
  });
  await child.waitFor(new RegExp(`${second.id} prompt`));
  assert.doesNotMatch(child.log, /request\.signal|legacy/, child.log);
  const denied = await fetch(`${url}/v1/models`);
  assert.equal(denied.status, 401);
  await denied.body?.cancel();
});

Deno.test("rill serve --cache-dir keeps a remote archive's members: the next start fetches only its index", async () => {
  const root = await Deno.makeTempDir({ prefix: "rill_serve_members_" });
  const bytes = await writeIndexedTar(join(root, "m.nnef.tar"), await readMembers(STORIES_ARCHIVE));
  const server = startTestServer({ "/m.nnef.tar": bytes }, { etag: '"m1"' });
  try {
    const env = { MODEL: `${server.url}/m.nnef.tar`, TOKENIZER: STORIES_TOKENIZER };
    const flags = ["--cache-dir", join(root, "cache"), "--threads", "0"];
    const requestsOfOneStart = async (): Promise<{ requests: number; bytes: number }> => {
      const before = server.requests.length;
      const { child, url } = await serve(env, false, flags);
      await using _ = child;
      await child.waitFor(/all weights in place/);
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
      const completion = await client.completions.create({
        model: "m.nnef.tar",
        prompt: "Once upon a time",
        max_tokens: 6,
        temperature: 0,
      });
      assert.match(completion.choices[0]!.text, /^, there was/);
      const seen = server.requests.slice(before);
      const asked = (range: string | null): number => {
        const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? "");
        return m ? Number(m[2]) - Number(m[1]) + 1 : bytes.length;
      };
      return { requests: seen.length, bytes: seen.reduce((n, r) => n + asked(r.range), 0) };
    };
    const first = await requestsOfOneStart();
    const second = await requestsOfOneStart();
    console.log(
      `first start: ${first.requests} requests, ${first.bytes} bytes; ` +
        `second: ${second.requests} requests, ${second.bytes} bytes`,
    );
    assert.ok(first.bytes > bytes.length * 0.9, `first start fetched ${first.bytes} bytes`);
    assert.ok(second.requests <= 2, `second start made ${second.requests} requests`);
    assert.ok(second.bytes < 64 << 10, `second start fetched ${second.bytes} bytes`);
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("deno task serve with no MODEL downloads the default model once, converts it and reuses the cache", async () => {
  const root = await Deno.makeTempDir({ prefix: "rill_default_model_" });
  try {
    const folder = join(root, "hub");
    await writeTinySmolLM2(folder);
    await using hub = startTestHub("HuggingFaceTB/SmolLM2-135M-Instruct", folder);
    const env = {
      MODEL: "",
      HF_ENDPOINT: hub.url,
      RILL_CACHE_DIR: join(root, "cache"),
      RILL_API_KEYS: "",
    };
    const ask = async (url: string) => {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
      const answer = await client.chat.completions.create({
        model: "HuggingFaceTB/SmolLM2-135M-Instruct",
        messages: [{ role: "user", content: "Hi!" }],
        max_tokens: 5,
        temperature: 0,
      });
      assert.equal(answer.model, "HuggingFaceTB/SmolLM2-135M-Instruct");
      assert.ok(answer.usage!.prompt_tokens > 10);
      return answer.choices[0]!.message.content;
    };

    const first = await serve(env, true);
    let text: string | null;
    {
      await using _ = first.child;
      assert.match(first.child.log, /downloading from http:\/\/127\.0\.0\.1/);
      assert.match(first.child.log, /converted hf:HuggingFaceTB\/SmolLM2-135M-Instruct/);
      assert.match(first.child.log, /\(hub-download\)/);
      assert.match(first.child.log, /authentication is OFF/);
      text = await ask(first.url);
    }
    const requests = hub.requests.length;
    assert.ok(requests > 0);

    const second = await serve(env, true);
    await using _ = second.child;
    assert.match(second.child.log, /\(hub-cache\)/);
    assert.equal(await ask(second.url), text);
    assert.equal(hub.requests.length, requests, "the second start must not touch the hub");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("rill serve with MODEL set to a GGUF file converts it once into the cache, shows progress and /ready's bytes, and the next start reuses it", async () => {
  const root = await Deno.makeTempDir({ prefix: "rill_gguf_model_" });
  try {
    const env = { MODEL: TINY_GGUF, RILL_CACHE_DIR: join(root, "cache"), RILL_API_KEYS: "" };
    const ask = async (url: string) => {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
      const answer = await client.completions.create({
        model: "llama-2-tiny-random.gguf",
        prompt: "Hello",
        max_tokens: 4,
        temperature: 0,
      });
      assert.equal(answer.usage!.completion_tokens, 4);
      return answer.choices[0]!.text;
    };
    const first = await serve(env);
    let text: string;
    {
      await using _ = first.child;
      const log = first.child.log;
      assert.match(log, /converting the GGUF file .*llama-2-tiny-random\.gguf to Q4_0 in /, log);
      assert.match(log, /rill: converting (\d+\.\d) of \1 MB \(100%\)/, log);
      assert.match(log, /\(converted\)/);
      await first.child.waitFor(/all weights in place/);
      // The load's last progress line comes before the line that says it ended.
      assert.match(
        first.child.log,
        /rill: loading (\d+\.\d) of \1 MB \(100%\)\n(.*\n)*.*all weights in place/,
      );
      const ready = await (await fetch(`${first.url}/ready`)).json();
      assert.equal(ready.status, "ready");
      assert.equal(ready.phase, "load");
      assert.ok(ready.bytes_total > 1_000_000, JSON.stringify(ready));
      assert.equal(ready.bytes_loaded, ready.bytes_total);
      text = await ask(first.url);
    }
    const second = await serve(env);
    await using _ = second.child;
    assert.match(second.child.log, /using .* converted earlier from .*llama-2-tiny-random\.gguf/);
    assert.match(second.child.log, /\(converted-cache\)/);
    assert.doesNotMatch(second.child.log, /rill: converting/);
    assert.equal(await ask(second.url), text);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("rill serve with no MODEL, no cache and no hub stops with a hint about MODEL", async () => {
  const root = await Deno.makeTempDir({ prefix: "rill_no_hub_" });
  try {
    const child = new Child([
      "run",
      "-A",
      "cli/main.ts",
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
    ], {
      MODEL: "",
      HF_ENDPOINT: unreachableHub(),
      RILL_CACHE_DIR: root,
    });
    await child.waitFor(/rill serve: /);
    const status = await child.stop();
    assert.match(child.log, /Set MODEL to a local archive/);
    assert.notEqual(status.code, 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("deno serve mod.ts loads the model at start and serves the default export", async () => {
  const child = new Child(["serve", "-A", "--host", "127.0.0.1", "--port", "0", "mod.ts"], {
    MODEL: STORIES_ARCHIVE,
    TOKENIZER: STORIES_TOKENIZER,
    RILL_API_KEYS: "sk-k",
    RILL_MODEL_ID: "stories260K",
  });
  await using _ = child;
  const [, url] = await child.waitFor(/Listening on (http:\/\/127\.0\.0\.1:\d+)/);
  // Ready before any request was made.
  await child.waitFor(/rill: ready/);
  assert.match(child.log, /loaded model 'stories260K' from .*stories260K_f32\.nnef\.tgz/);
  assert.match(child.log, /rill: memory: limit \d+ MiB \(.+\), weights/);
  const base = url!.replace(/\/$/, "");
  const ready = await fetch(`${base}/ready`);
  assert.equal(ready.status, 200);
  await ready.body?.cancel();
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "sk-k", maxRetries: 0 });
  const completion = await client.completions.create({
    model: "stories260K",
    prompt: "Once upon a time",
    max_tokens: 6,
    temperature: 0,
  });
  assert.ok(completion.choices[0]!.text.length > 0);
});
