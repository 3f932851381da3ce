/**
 * The playground in Debian's Chromium against a real server: streaming, stop, auth, rendering.
 * The model is the tiny random SmolLM2 (its chat template takes a system prompt), run in
 * TypeScript.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { createApp, ServingState } from "../routes/mod.ts";
import type { ServingConfig } from "../routes/state.ts";
import { loadService } from "../src/engine/load_service.ts";
import type { InferenceService } from "../src/engine/service.ts";
import { launchBrowser, waitForScript, withPage } from "./_browser.ts";
import { writeTinySmolLM2Archive } from "./_hub.ts";
import { metricValue } from "./_serve_harness.ts";
import { loadTinySmolLM2, THINKING_TEMPLATE } from "./_smollm2.ts";

/** A served model, with what the API sent and received, seen at the server. */
interface TappedServer extends AsyncDisposable {
  readonly url: string;
  readonly state: ServingState;
  /** Bodies of the chat requests received. */
  readonly chatRequests: Record<string, unknown>[];
  /** Epoch milliseconds at which each chat stream's first text chunk left the app. */
  readonly firstTokenAt: number[];
  /** The server-sent events body of each chat stream, as far as it left the app. */
  readonly streams: string[];
}

/** The text carried by the `delta[field]` of a chat stream's events (the answer's by default). */
function streamedText(events: string, field = "content"): string {
  return events.split("\n")
    .filter((line) => line.startsWith("data: {"))
    .map((line) => JSON.parse(line.slice("data: ".length)).choices?.[0]?.delta?.[field] ?? "")
    .join("");
}

function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Serves `service` with `config`, recording the chat requests and streams; `extra` fields are
 * added to each chat request on its way in (the page never sends them).
 */
async function startTappedServer(
  service: InferenceService,
  config: Partial<ServingConfig> = {},
  extra: Record<string, unknown> = {},
): Promise<TappedServer> {
  const state = new ServingState(config);
  await state.load(service);
  const app = createApp(state);
  const chatRequests: Record<string, unknown>[] = [];
  const firstTokenAt: number[] = [];
  const streams: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    if (new URL(request.url).pathname !== "/v1/chat/completions") return await app.fetch(request);
    const body = await request.json();
    chatRequests.push(body);
    const response = await app.fetch(
      new Request(request, { body: JSON.stringify({ ...body, ...extra }) }),
    );
    if (response.body === null) return response;
    const decoder = new TextDecoder();
    const index = streams.push("") - 1;
    let seen = false;
    const tap = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        const text = decoder.decode(chunk, { stream: true });
        streams[index] += text;
        if (!seen && /"delta":\{"content":"[^"]/.test(text)) {
          seen = true;
          firstTokenAt.push(epochNow());
        }
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(tap), response);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    state,
    chatRequests,
    firstTokenAt,
    streams,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

let tiny: Promise<InferenceService> | undefined;

/** The tiny SmolLM2 service, loaded once per test process. */
function tinyService(): Promise<InferenceService> {
  tiny ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "rill_playground_" });
    try {
      const loaded = await loadService(await writeTinySmolLM2Archive(dir), { modelId: "tiny" });
      await loaded.weightsReady;
      return loaded.service;
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  return tiny;
}

/**
 * In the page: records when the last assistant message first shows text (epoch ms,
 * `firstTokenAt`) and each length its text takes as it grows (`lengths`). Scripts for the page
 * are strings: Deno type-checks this file without the DOM's types.
 */
const WATCH_ANSWER = `
  globalThis.firstTokenAt = null;
  globalThis.lengths = [];
  const messages = document.getElementById("messages");
  new MutationObserver(() => {
    const content = messages.querySelector("li[data-role=assistant]:last-child .content");
    const length = content?.textContent?.length ?? 0;
    if (length === 0) return;
    globalThis.firstTokenAt ??= performance.timeOrigin + performance.now();
    if (globalThis.lengths.at(-1) !== length) globalThis.lengths.push(length);
  }).observe(messages, { subtree: true, childList: true, characterData: true });
`;

async function answerState(
  page: Page,
): Promise<{ firstTokenAt: number | null; lengths: number[] }> {
  return await page.evaluate(
    "({ firstTokenAt: globalThis.firstTokenAt, lengths: globalThis.lengths })",
  );
}

Deno.test("the playground shows the model, streams an answer with the settings given, and times it", async () => {
  await using server = await startTappedServer(await tinyService());
  await using browser = await launchBrowser();
  await withPage(browser, "playground_stream", async (page) => {
    await page.goto(server.url);
    await page.locator("#model-name", { hasText: "tiny" }).waitFor();
    assert.equal(await page.textContent("#model-context"), "· 512-token context");
    assert.ok(await page.isHidden("#auth"));
    await page.fill("#system", "You answer briefly.");
    await page.fill("#temperature", "0.5");
    await page.fill("#top-p", "0.9");
    await page.fill("#max-tokens", "40");
    await page.evaluate(WATCH_ANSWER);
    await page.fill("#prompt", "Hello there");
    await page.press("#prompt", "Enter");
    const answer = page.locator("li[data-role=assistant]").last();
    await answer.and(page.locator("[data-state=done]")).waitFor({ timeout: 60_000 });

    assert.equal(await page.textContent("li[data-role=user]"), "Hello there");
    const { firstTokenAt, lengths } = await answerState(page);
    // The random model rarely samples its end token within 40 (once in a CI run, after 3):
    // the line then says how many came, without "max tokens reached".
    const stats = await answer.locator(".stats").textContent();
    const line =
      /^first token \d+\.\d\d s( · \d+\.\d tokens\/s)? · (\d+) tokens?( · max tokens reached)?$/
        .exec(stats!);
    assert.ok(line, stats!);
    const count = Number(line[2]);
    assert.ok(count >= 1 && count <= 40, stats!);
    assert.equal(line[1] !== undefined, count > 1, stats!);
    assert.equal(line[3] !== undefined, count === 40, stats!);
    assert.ok(lengths.length >= Math.min(3, count), `the text arrived in ${lengths.length} steps`);
    assert.ok(lengths.every((n, i) => i === 0 || n > lengths[i - 1]!), `${lengths}`);

    assert.deepEqual(server.chatRequests.length, 1);
    const sent = server.chatRequests[0]!;
    assert.deepEqual(sent.messages, [
      { role: "system", content: "You answer briefly." },
      { role: "user", content: "Hello there" },
    ]);
    assert.equal(sent.model, "tiny");
    assert.equal(sent.stream, true);
    assert.equal(sent.temperature, 0.5);
    assert.equal(sent.top_p, 0.9);
    assert.equal(sent.max_tokens, 40);

    const lag = firstTokenAt! - server.firstTokenAt[0]!;
    console.log(`page's first token ${lag.toFixed(1)} ms after the API's (target: within 100 ms)`);
    assert.ok(lag < 1000, `the page showed the first token ${lag} ms after the API sent it`);
  });
});

Deno.test("the playground's Stop cancels the request on the server, and the chat goes on", async () => {
  // Random weights may end an answer before Stop is clicked: this one runs to its limit.
  await using server = await startTappedServer(await tinyService(), {}, { ignore_eos: true });
  await using browser = await launchBrowser();
  await withPage(browser, "playground_stop", async (page) => {
    await page.goto(server.url);
    await page.locator("#model-name", { hasText: "tiny" }).waitFor();
    await page.fill("#temperature", "1");
    await page.fill("#max-tokens", "470");
    await page.evaluate(WATCH_ANSWER);
    await page.fill("#prompt", "Tell me a long story.");
    await page.click("#send");
    await waitForScript(page, "globalThis.firstTokenAt !== null");
    assert.ok(await page.isDisabled("#send"));
    await page.click("#stop");
    const answer = page.locator("li[data-role=assistant]").last();
    await answer.and(page.locator("[data-state=stopped]")).waitFor();
    assert.match((await answer.locator(".stats").textContent())!, / · stopped$/);
    const deadline = Date.now() + 10_000;
    while (await metricValue(server.url, "rill_cancellations_total") < 1) {
      assert.ok(Date.now() < deadline, "the server never saw the cancel");
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(server.state.queue.running, 0);
    assert.equal(await metricValue(server.url, "rill_completion_tokens_total"), 0);
    assert.notEqual((await answer.locator(".content").textContent())!.trim(), "");

    await page.fill("#max-tokens", "5");
    await page.fill("#prompt", "And then?");
    await page.press("#prompt", "Enter");
    await page.locator("li[data-role=assistant]").nth(1).and(page.locator("[data-state=done]"))
      .waitFor();
    const followUp = server.chatRequests[1]!.messages as { role: string; content: string }[];
    assert.deepEqual(followUp.map((m) => m.role), ["user", "assistant", "user"]);
    // The page keeps the text it received before Stop, which the server may have outrun; what
    // it shows is that text rendered as Markdown, so the raw text is checked against the stream.
    const kept = followUp[1]!.content;
    assert.notEqual(kept, "");
    assert.ok(
      streamedText(server.streams[0]!).startsWith(kept),
      "the stopped answer sent back is not the text the server streamed",
    );
  });
});

Deno.test("with RILL_API_KEYS set, the playground asks for a key, refuses a wrong one and chats with the right one", async () => {
  await using server = await startTappedServer(await tinyService(), { apiKeys: ["sk-right"] });
  await using browser = await launchBrowser();
  await withPage(browser, "playground_auth", async (page) => {
    await page.goto(server.url);
    await page.locator("#auth").waitFor();
    assert.equal(await page.textContent("#status"), "API key required");
    assert.ok(await page.isDisabled("#prompt"));
    await page.fill("#api-key", "sk-wrong");
    await page.click("#auth button[type=submit]");
    await page.locator("#auth-error", { hasText: "Incorrect API key provided" }).waitFor();
    assert.ok(await page.isVisible("#auth"));
    await page.fill("#api-key", "sk-right");
    await page.click("#auth button[type=submit]");
    await page.locator("#model-name", { hasText: "tiny" }).waitFor();
    assert.ok(await page.isHidden("#auth"));
    await page.fill("#max-tokens", "3");
    await page.fill("#prompt", "Hi");
    await page.press("#prompt", "Enter");
    await page.locator("li[data-role=assistant][data-state=done]").waitFor();
    assert.match((await page.textContent("li[data-role=assistant] .stats"))!, /3 tokens/);
  });
});

Deno.test("the playground renders markdown with elements and text nodes only, never the model's HTML", async () => {
  await using server = await startTappedServer(await tinyService());
  await using browser = await launchBrowser();
  await withPage(browser, "playground_markdown", async (page) => {
    const blocked: string[] = [];
    page.on("dialog", (dialog) => {
      blocked.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(server.url);
    await page.locator("#model-name", { hasText: "tiny" }).waitFor();
    const hostile = [
      "# Title <img src=x onerror=alert(1)>",
      "Some **bold <b>tag</b>** and `<script>alert(2)</script>` and [x](javascript:alert(3))",
      "and [ok](https://example.com/) <svg onload=alert(4)>",
      "```html",
      "<script>alert(5)</script>",
      "```",
      "- <iframe src=javascript:alert(6)>",
    ].join("\n");
    const rendered: {
      tags: string[];
      links: (string | null)[];
      text: string;
      attributes: string[];
    } = await page.evaluate(`(async () => {
      const module = await import("/playground/playground.js");
      const host = document.createElement("div");
      host.append(...module.renderMarkdown(${JSON.stringify(hostile)}));
      document.body.append(host);
      return {
        tags: [...host.querySelectorAll("*")].map((e) => e.tagName.toLowerCase()),
        links: [...host.querySelectorAll("a")].map((a) => a.getAttribute("href")),
        text: host.textContent,
        attributes: [...host.querySelectorAll("*")].flatMap((e) => e.getAttributeNames()),
      };
    })()`);
    assert.deepEqual(rendered.tags, [
      "h3",
      "p",
      "strong",
      "code",
      "br",
      "a",
      "pre",
      "code",
      "ul",
      "li",
    ]);
    assert.deepEqual(rendered.links, ["https://example.com/"]);
    assert.deepEqual([...new Set(rendered.attributes)].sort(), [
      "data-lang",
      "href",
      "rel",
      "target",
    ]);
    for (
      const piece of [
        "<img src=x onerror=alert(1)>",
        "<script>alert(5)</script>",
        "<svg onload=alert(4)>",
      ]
    ) {
      assert.ok(rendered.text.includes(piece), piece);
    }
    await page.waitForTimeout(100);
    assert.deepEqual(blocked, [], "no script of the text ran");
  });
});

Deno.test("the playground folds a thinking model's reasoning above its answer, and sends it back next turn", async () => {
  const thinking = await loadTinySmolLM2("thinking", THINKING_TEMPLATE);
  // The random model never closes its reasoning: all it writes is reasoning.
  await using server = await startTappedServer(thinking, {}, { ignore_eos: true });
  await using browser = await launchBrowser();
  await withPage(browser, "playground_reasoning", async (page) => {
    await page.goto(server.url);
    await page.locator("#model-name", { hasText: "thinking" }).waitFor();
    await page.fill("#max-tokens", "12");
    await page.fill("#prompt", "Why is the sky blue?");
    await page.press("#prompt", "Enter");
    const answer = page.locator("li[data-role=assistant]").last();
    await answer.and(page.locator("[data-state=done]")).waitFor({ timeout: 60_000 });
    const streamed = streamedText(server.streams[0]!, "reasoning_content");
    assert.ok(streamed.length > 0);
    assert.equal(await answer.locator(".reasoning summary").textContent(), "Thinking");
    assert.ok(await answer.locator(".reasoning").isVisible());
    assert.equal(await answer.locator(".reasoning .thoughts").textContent(), streamed);
    assert.equal(await answer.locator(".content").textContent(), "");
    assert.match(await answer.locator(".stats").textContent() ?? "", /12 tokens/);

    await page.fill("#prompt", "And at sunset?");
    await page.press("#prompt", "Enter");
    await page.locator("li[data-role=assistant][data-state=done]").nth(1).waitFor({
      timeout: 60_000,
    });
    const history = server.chatRequests[1]!.messages as Record<string, unknown>[];
    assert.deepEqual(history[1], { role: "assistant", content: "", reasoning_content: streamed });
  });
});
