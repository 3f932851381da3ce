import { Hono } from "hono";

/** The playground's files (`routes/playground/`), by the path they are served at. */
const FILES: Record<string, { readonly file: string; readonly type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/playground/playground.js": { file: "playground.js", type: "text/javascript; charset=utf-8" },
  "/playground/markdown.js": { file: "markdown.js", type: "text/javascript; charset=utf-8" },
  "/playground/sse.js": { file: "sse.js", type: "text/javascript; charset=utf-8" },
  "/playground/playground.css": { file: "playground.css", type: "text/css; charset=utf-8" },
};

/** Scripts and styles from this origin only, no inline code, no framing, requests to itself. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * `GET /` and `GET /playground/*`: the chat playground, a static page over the public API
 * (`/v1/models`, `/v1/chat/completions`), served without authentication: it asks for the
 * API key itself when the server wants one. Files are read once, on first request.
 */
export function playgroundRoute(): Hono {
  const app = new Hono();
  const loaded = new Map<string, Promise<Uint8Array>>();
  for (const [path, { file, type }] of Object.entries(FILES)) {
    app.get(path, async (c) => {
      let bytes = loaded.get(file);
      if (bytes === undefined) {
        loaded.set(file, bytes = readAsset(file));
        bytes.catch(() => loaded.delete(file));
      }
      return c.body((await bytes) as Uint8Array<ArrayBuffer>, 200, {
        "Content-Type": type,
        "Cache-Control": "no-cache",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
      });
    });
  }
  return app;
}

/** A file of `routes/playground/`, from disk or, for remote code, over HTTP. */
async function readAsset(file: string): Promise<Uint8Array> {
  const url = new URL(`./playground/${file}`, import.meta.url);
  if (url.protocol === "file:") return await Deno.readFile(url);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`Cannot fetch ${url}: ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}
