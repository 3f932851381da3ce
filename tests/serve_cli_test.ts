import assert from "node:assert/strict";
import { join } from "node:path";
import OpenAI from "openai";
import { startTestHub, unreachableHub, writeTinySmolLM2 } from "./_hub.ts";
import { STORIES_ARCHIVE, STORIES_TOKENIZER } from "./_serve_harness.ts";
import { readMembers, writeIndexedTar } from "./_archives.ts";
import { startTestServer } from "../src/storage/_test_server.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** A child `rill serve` (or `deno serve`) process whose stderr is collected. */
class Child implements AsyncDisposable {
  readonly #process: Deno.ChildProcess;
  readonly #drained: Promise<void>;
  log = "";

  constructor(args: string[], env: Record<string, string>) {
    this.#process = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) this.log += text;
    };
    this.#drained = Promise.all([
      collect(this.#process.stdout),
      collect(this.#process.stderr),
    ]).then(() => {});
  }

  /** Waits until the log matches `pattern`; returns the match. */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.log);
      if (match) return match;
      assert.ok(Date.now() < deadline, `timed out waiting for ${pattern}; log:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGTERM, then SIGKILL if the process is still there after 10 s. */
  async stop(): Promise<Deno.CommandStatus> {
    const signal = (name: Deno.Signal) => {
      try {
        this.#process.kill(name);
      } catch {
        // already exited
      }
    };
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), 10_000);
    const status = await this.#process.status;
    clearTimeout(timer);
    await this.#drained;
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

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
    /loaded model 'stories260K_f32\.nnef\.tgz' from .*stories260K_f32\.nnef\.tgz \(local\), (\d+) bytes, context \d+ tokens, tokenizer from .*tok512\.bin, (relaxed|simd128) kernels, graph in \d+\.\d+ s/
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

Deno.test("deno serve mod.ts serves the default export, loading the model on first use", async () => {
  const child = new Child(["serve", "-A", "--host", "127.0.0.1", "--port", "0", "mod.ts"], {
    MODEL: STORIES_ARCHIVE,
    TOKENIZER: STORIES_TOKENIZER,
    RILL_API_KEYS: "sk-k",
    RILL_MODEL_ID: "stories260K",
  });
  await using _ = child;
  const [, url] = await child.waitFor(/Listening on (http:\/\/127\.0\.0\.1:\d+)/);
  const base = url!.replace(/\/$/, "");
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  await health.body?.cancel();
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`${base}/ready`);
    await ready.body?.cancel();
    if (ready.status === 200) break;
    assert.ok(Date.now() < deadline, `not ready; log:\n${child.log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "sk-k", maxRetries: 0 });
  const completion = await client.completions.create({
    model: "stories260K",
    prompt: "Once upon a time",
    max_tokens: 6,
    temperature: 0,
  });
  assert.ok(completion.choices[0]!.text.length > 0);
});
