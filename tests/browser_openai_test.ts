/**
 * The `openai` SDK in a web page (Debian's Chromium), calling the server from another origin:
 * CORS must let through what the SDK sends (its `x-stainless-*` headers, the API key).
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { launchBrowser, withPage } from "./_browser.ts";
import { startServer } from "./_serve_harness.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** The `openai` npm package bundled for the browser by `deno bundle` (from the npm cache). */
async function bundleOpenAI(dir: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/entry.ts`, 'export { default as OpenAI } from "openai";\n');
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--config",
      `${ROOT}deno.json`,
      "--platform",
      "browser",
      "-o",
      `${dir}/openai.js`,
      `${dir}/entry.ts`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return await Deno.readTextFile(`${dir}/openai.js`);
}

const PAGE = `<!doctype html>
<title>openai in a page</title>
<pre id="out">running</pre>
<script type="module">
  import { OpenAI } from "./openai.js";
  const params = new URLSearchParams(location.search);
  const client = new OpenAI({
    baseURL: params.get("api"),
    apiKey: "sk-page",
    dangerouslyAllowBrowser: true,
    maxRetries: 0,
  });
  const out = document.getElementById("out");
  try {
    const messages = [{ role: "user", content: "Tell me a story." }];
    const whole = await client.chat.completions.create({
      model: "stories260K", messages, max_tokens: 8, temperature: 0,
    });
    let streamed = "";
    const stream = await client.chat.completions.create({
      model: "stories260K", messages, max_tokens: 8, temperature: 0, stream: true,
    });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? "";
    const models = await client.models.list();
    out.textContent = JSON.stringify({
      whole: whole.choices[0].message.content,
      streamed,
      requestId: whole._request_id,
      model: models.data[0].id,
    });
  } catch (error) {
    out.textContent = JSON.stringify({ error: String(error) });
  }
</script>`;

/** Opens the page against the API at `api` and returns what it wrote. */
async function runPage(tab: Page, pagePort: number, api: string): Promise<Record<string, string>> {
  await tab.goto(`http://127.0.0.1:${pagePort}/?api=${encodeURIComponent(api)}`);
  await tab.waitForFunction('document.getElementById("out").textContent !== "running"');
  return JSON.parse((await tab.textContent("#out"))!);
}

/** Serves the page and the bundle on a port of their own (another origin than the API). */
function servePage(bundle: string): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/openai.js") {
      return new Response(bundle, { headers: { "Content-Type": "text/javascript" } });
    }
    return new Response(PAGE, { headers: { "Content-Type": "text/html" } });
  });
}

Deno.test("the openai SDK in a Chromium page calls the server across origins", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rill_browser_openai_" });
  try {
    const bundle = await bundleOpenAI(dir);
    const page = servePage(bundle);
    try {
      await using browser = await launchBrowser();
      for (const corsOrigins of [["*"], [`http://127.0.0.1:${page.addr.port}`]]) {
        await using server = await startServer({ corsOrigins, apiKeys: ["sk-page"] });
        const expected = await server.client("sk-page").chat.completions.create({
          model: "stories260K",
          messages: [{ role: "user", content: "Tell me a story." }],
          max_tokens: 8,
          temperature: 0,
        });
        await withPage(browser, "browser_openai", async (tab) => {
          const result = await runPage(tab, page.addr.port, `${server.url}/v1`);
          assert.equal(result.error, undefined, `${corsOrigins}: ${result.error}`);
          assert.equal(result.whole, expected.choices[0]!.message.content);
          assert.equal(result.streamed, result.whole);
          assert.match(result.requestId ?? "", /^req_/);
          assert.equal(result.model, "stories260K");
        });
      }
      // Without CORS the browser refuses the answer: the test above is not vacuous.
      await using closed = await startServer({ apiKeys: ["sk-page"] });
      await withPage(browser, "browser_openai_closed", async (tab) => {
        const result = await runPage(tab, page.addr.port, `${closed.url}/v1`);
        assert.match(result.error ?? "", /Connection error/);
      });
    } finally {
      await page.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
