/** A real HTTP server on 127.0.0.1 for tests: serves fixed objects with Range support. */
export interface TestServerOptions {
  /** Answer every request with the whole object and 200, ignoring Range. */
  readonly ignoreRange?: boolean;
  /** Answer this many requests with 503 before serving normally. */
  readonly failFirst?: number;
  /** Hold the first request this many ms before answering it. */
  readonly stallFirstMs?: number;
  /** Send this ETag and honour If-Match. */
  readonly etag?: string;
  /** Send this Last-Modified and honour If-Unmodified-Since (compared as text). */
  readonly lastModified?: string;
  /** Ignore If-Match and If-Unmodified-Since, like a server without conditional requests. */
  readonly ignoreConditionals?: boolean;
  /** Send bodies at most this fast, all connections together (bytes per second). */
  readonly bytesPerSecond?: number;
}

/** What the server saw of one request. */
export interface SeenRequest {
  readonly path: string;
  readonly range: string | null;
  readonly ifMatch: string | null;
}

export interface TestServer {
  readonly url: string;
  /** Requests received, including failed ones. */
  readonly requests: SeenRequest[];
  /** Replaces an object (e.g. to test ETag pinning). */
  put(path: string, bytes: Uint8Array, etag?: string, lastModified?: string): void;
  close(): Promise<void>;
}

export function startTestServer(
  objects: Record<string, Uint8Array>,
  options: TestServerOptions = {},
): TestServer {
  const store = new Map(Object.entries(objects));
  const etags = new Map<string, string>();
  if (options.etag !== undefined) { for (const key of store.keys()) etags.set(key, options.etag); }
  const lastModified = new Map<string, string>();
  if (options.lastModified !== undefined) {
    for (const key of store.keys()) lastModified.set(key, options.lastModified);
  }
  const requests: SeenRequest[] = [];
  let failures = options.failFirst ?? 0;
  let stall = options.stallFirstMs ?? 0;
  const rate = options.bytesPerSecond;
  let nextFree = 0;
  // Chunks of about 4 ms at the rate (at least 16 KiB): timers fire late by a millisecond or
  // so, which would cap a fast rate paced in small chunks.
  const chunk = Math.max(16 << 10, Math.round((rate ?? 0) / 250));
  /** A body paced by the shared rate. */
  function paced(bytes: Uint8Array): BodyInit {
    if (rate === undefined) return bytes as Uint8Array<ArrayBuffer>;
    let at = 0;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const n = Math.min(chunk, bytes.length - at);
        const now = performance.now();
        nextFree = Math.max(now, nextFree) + (n / rate) * 1000;
        await new Promise((resolve) => setTimeout(resolve, nextFree - now));
        controller.enqueue(bytes.slice(at, at + n));
        at += n;
        if (at >= bytes.length) controller.close();
      },
    });
  }
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    requests.push({
      path: new URL(req.url).pathname,
      range: req.headers.get("range"),
      ifMatch: req.headers.get("if-match"),
    });
    if (stall > 0) {
      const ms = stall;
      stall = 0;
      await new Promise((resolve) => setTimeout(resolve, ms));
    }
    if (failures > 0) {
      failures--;
      return new Response("busy", { status: 503, headers: { "retry-after": "0" } });
    }
    const path = new URL(req.url).pathname;
    const body = store.get(path);
    if (body === undefined) return new Response("not found", { status: 404 });
    const headers = new Headers({ "accept-ranges": "bytes" });
    const etag = etags.get(path);
    if (etag !== undefined) {
      headers.set("etag", etag);
      const ifMatch = req.headers.get("if-match");
      if (ifMatch !== null && ifMatch !== etag && !options.ignoreConditionals) {
        return new Response(null, { status: 412 });
      }
    }
    const modified = lastModified.get(path);
    if (modified !== undefined) {
      headers.set("last-modified", modified);
      const since = req.headers.get("if-unmodified-since");
      if (since !== null && since !== modified && !options.ignoreConditionals) {
        return new Response(null, { status: 412 });
      }
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
    if (options.ignoreRange || range === null) {
      return new Response(paced(body.slice()), { status: 200, headers });
    }
    const start = Number(range[1]);
    const end = Math.min(range[2] === "" ? body.length - 1 : Number(range[2]), body.length - 1);
    if (start >= body.length) {
      headers.set("content-range", `bytes */${body.length}`);
      return new Response(null, { status: 416, headers });
    }
    headers.set("content-range", `bytes ${start}-${end}/${body.length}`);
    return new Response(paced(body.slice(start, end + 1)), { status: 206, headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    put(path: string, bytes: Uint8Array, etag?: string, modified?: string): void {
      store.set(path, bytes);
      if (etag !== undefined) etags.set(path, etag);
      if (modified !== undefined) lastModified.set(path, modified);
    },
    async close(): Promise<void> {
      await server.shutdown();
    },
  };
}
