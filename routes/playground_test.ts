import assert from "node:assert/strict";
import { createApp, ServingState } from "./mod.ts";

Deno.test("the playground is served at / with its assets, without a key, under a strict CSP", async () => {
  const app = createApp(new ServingState({ apiKeys: ["sk-secret"] }));
  const page = await app.request("/");
  assert.equal(page.status, 200);
  assert.equal(page.headers.get("Content-Type"), "text/html; charset=utf-8");
  const csp = page.headers.get("Content-Security-Policy")!;
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(page.headers.get("X-Content-Type-Options"), "nosniff");
  const html = await page.text();
  assert.match(html, /<script type="module" src="\/playground\/playground\.js"><\/script>/);
  assert.doesNotMatch(
    html,
    /<script>|<style>|style="/,
    "no inline script or style (the CSP forbids them)",
  );
  for (
    const [path, type] of [
      ["/playground/playground.js", "text/javascript; charset=utf-8"],
      ["/playground/markdown.js", "text/javascript; charset=utf-8"],
      ["/playground/sse.js", "text/javascript; charset=utf-8"],
      ["/playground/playground.css", "text/css; charset=utf-8"],
    ]
  ) {
    const asset = await app.request(path!);
    assert.equal(asset.status, 200, path);
    assert.equal(asset.headers.get("Content-Type"), type, path);
    assert.ok((await asset.text()).length > 100, path);
  }
  const unknown = await app.request("/playground/nope.js", {
    headers: { Authorization: "Bearer sk-secret" },
  });
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
  const api = await app.request("/v1/models");
  assert.equal(api.status, 401, "the API stays behind the key");
  await api.body?.cancel();
});
