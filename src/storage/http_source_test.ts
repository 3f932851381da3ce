import assert from "node:assert/strict";
import { openHttpSource } from "./http_source.ts";
import { redactText, redactUrl } from "./redact.ts";
import { startTestServer } from "./_test_server.ts";
import { BounceReader } from "./_bounce.ts";

function pattern(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * A fetch whose first answer to a request for `range` sends its first 1000 bytes, in one chunk
 * of a body that is not a byte stream, and then breaks.
 */
function cutOnce(range: string): typeof fetch {
  let cut = true;
  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const res = await fetch(input, init);
    if (!cut || new Headers(init?.headers).get("range") !== range) return res;
    cut = false;
    const reader = res.body!.getReader();
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent) {
          await reader.cancel();
          controller.error(new TypeError("connection reset"));
          return;
        }
        const { value } = await reader.read();
        controller.enqueue(value!.subarray(0, 1000));
        sent = true;
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
}

Deno.test("openHttpSource reads ranges with 206 and counts requests and bytes", async () => {
  const data = pattern(5000);
  const server = startTestServer({ "/blob": data });
  const source = await openHttpSource(`${server.url}/blob`, { probeBytes: 100 });
  try {
    assert.equal(await source.size(), 5000);
    assert.deepEqual(await source.read(10, 20), data.slice(10, 30));
    assert.equal(source.requests, 1, "reads inside the probe are served from it");
    assert.deepEqual(await source.read(4000, 1000), data.slice(4000));
    assert.equal(source.requests, 2);
    assert.equal(source.bytesFetched, 1100);
    assert.deepEqual(await source.read(5000, 0), new Uint8Array(0));
    assert.equal(server.requests[1]!.range, "bytes=4000-4999");
    await assert.rejects(() => source.read(4990, 11), RangeError);
    assert.ok(source.rangeSupported);
  } finally {
    await source.close();
    await server.close();
  }
});

Deno.test("openHttpSource streams a range in one request", async () => {
  const data = pattern(300_000);
  const server = startTestServer({ "/blob": data });
  const source = await openHttpSource(`${server.url}/blob`);
  try {
    assert.deepEqual(await collect(source.stream(1000, 250_000)), data.slice(1000, 251_000));
    assert.equal(source.requests, 2);
  } finally {
    await source.close();
    await server.close();
  }
});

Deno.test("openHttpSource reads the body once when the server ignores Range", async () => {
  const data = pattern(3000);
  const server = startTestServer({ "/blob": data }, { ignoreRange: true });
  const source = await openHttpSource(`${server.url}/blob`);
  try {
    assert.equal(await source.size(), 3000);
    assert.equal(source.rangeSupported, false);
    assert.deepEqual(await source.read(2000, 1000), data.slice(2000));
    assert.deepEqual(await collect(source.stream(5, 10)), data.slice(5, 15));
    assert.equal(source.requests, 1);
    assert.equal(source.bytesFetched, 3000);
  } finally {
    await source.close();
    await server.close();
  }
});

Deno.test("openHttpSource retries 503 with backoff, then succeeds", async () => {
  const data = pattern(2000);
  const server = startTestServer({ "/blob": data }, { failFirst: 2 });
  const source = await openHttpSource(`${server.url}/blob`, { retryBaseMs: 1 });
  try {
    assert.equal(await source.size(), 2000);
    assert.equal(source.requests, 3);
    assert.deepEqual(await source.read(1500, 500), data.slice(1500));
  } finally {
    await source.close();
    await server.close();
  }
});

Deno.test("openHttpSource gives up after a bounded number of retries", async () => {
  const server = startTestServer({ "/blob": pattern(10) }, { failFirst: 100 });
  try {
    await assert.rejects(
      () => openHttpSource(`${server.url}/blob`, { retries: 2, retryBaseMs: 1 }),
      /503 Service Unavailable \(gave up after 3 attempts\)/,
    );
    assert.equal(server.requests.length, 3);
  } finally {
    await server.close();
  }
});

Deno.test("openHttpSource fails at once on 404, naming the URL without its query", async () => {
  const server = startTestServer({});
  try {
    await assert.rejects(
      () => openHttpSource(`${server.url}/missing.tar?X-Amz-Signature=secret`),
      (e: unknown) =>
        e instanceof Error && !e.message.includes("secret") &&
        e.message === `GET ${server.url}/missing.tar?<redacted>: 404 Not Found`,
    );
    assert.equal(server.requests.length, 1);
  } finally {
    await server.close();
  }
});

Deno.test("openHttpSource retries network errors", async () => {
  const data = pattern(64);
  const server = startTestServer({ "/blob": data });
  let calls = 0;
  function flaky(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    calls++;
    if (calls === 1) return Promise.reject(new TypeError("connection reset"));
    return fetch(input, init);
  }
  const source = await openHttpSource(`${server.url}/blob`, { fetch: flaky, retryBaseMs: 1 });
  try {
    assert.equal(await source.size(), 64);
    assert.equal(source.requests, 2);
  } finally {
    await source.close();
    await server.close();
  }
});

Deno.test("openHttpSource retries a request that gets no answer in time", async () => {
  const server = startTestServer({ "/blob": pattern(100) }, { stallFirstMs: 300 });
  try {
    const source = await openHttpSource(`${server.url}/blob`, { timeoutMs: 50, retryBaseMs: 1 });
    assert.equal(await source.size(), 100);
    assert.equal(source.requests, 2);
    await source.close();
  } finally {
    await server.close();
  }
});

Deno.test("openHttpSource resumes a stream whose connection breaks", async () => {
  const data = pattern(100_000);
  const server = startTestServer({ "/blob": data });
  const cutting = cutOnce("bytes=2000-99999");
  const source = await openHttpSource(`${server.url}/blob`, { fetch: cutting, retryBaseMs: 1 });
  try {
    assert.deepEqual(await collect(source.stream(2000, 98_000)), data.slice(2000));
    assert.equal(server.requests.at(-1)!.range, "bytes=3000-99999");
  } finally {
    await source.close();
    await server.close();
  }
});

Deno.test("openHttpSource pins the ETag with If-Match", async () => {
  const server = startTestServer({ "/blob": pattern(4000) }, { etag: '"v1"' });
  const source = await openHttpSource(`${server.url}/blob`, { probeBytes: 16 });
  try {
    assert.equal(source.etag, '"v1"');
    await source.read(100, 10);
    assert.equal(server.requests[1]!.ifMatch, '"v1"');
    server.put("/blob", pattern(4000), '"v2"');
    await assert.rejects(() => source.read(200, 10), /412.*changed since it was opened/);
  } finally {
    await source.close();
    await server.close();
  }
});

Deno.test("openHttpSource detects a changed ETag from a server that ignores If-Match", async () => {
  const server = startTestServer({ "/blob": pattern(4000) }, {
    etag: '"v1"',
    ignoreConditionals: true,
  });
  const source = await openHttpSource(`${server.url}/blob`, { probeBytes: 16 });
  try {
    await source.read(100, 10);
    server.put("/blob", pattern(4000), '"v2"');
    await assert.rejects(
      () => source.read(200, 10),
      (e: unknown) =>
        e instanceof Error &&
        e.message ===
          `GET ${server.url}/blob: 206 Partial Content: the object changed since it was opened (ETag "v1"), now "v2"`,
    );
  } finally {
    await source.close();
    await server.close();
  }
});

Deno.test("openHttpSource pins Last-Modified with If-Unmodified-Since when there is no ETag", async () => {
  const first = "Wed, 21 Oct 2026 07:28:00 GMT";
  const server = startTestServer({ "/blob": pattern(4000) }, { lastModified: first });
  const source = await openHttpSource(`${server.url}/blob`, { probeBytes: 16 });
  try {
    await source.read(100, 10);
    server.put("/blob", pattern(4000), undefined, "Thu, 22 Oct 2026 07:28:00 GMT");
    await assert.rejects(
      () => source.read(200, 10),
      new RegExp(`412.*the object changed since it was opened \\(Last-Modified ${first}\\)`),
    );
  } finally {
    await source.close();
    await server.close();
  }
});

Deno.test("openHttpSource handles an empty object", async () => {
  const server = startTestServer({ "/empty": new Uint8Array(0) });
  const source = await openHttpSource(`${server.url}/empty`);
  try {
    assert.equal(await source.size(), 0);
  } finally {
    await source.close();
    await server.close();
  }
});

Deno.test("redactUrl hides credentials and the query", () => {
  assert.equal(
    redactUrl("https://user:pw@example.com/a/m.tar?sig=1#x"),
    "https://***@example.com/a/m.tar?<redacted>",
  );
  assert.equal(redactUrl("http://h/m.tar"), "http://h/m.tar");
});

Deno.test("openHttpSource fills a BYOB reader's buffer in place across a broken connection", async () => {
  const data = pattern(100_000);
  const server = startTestServer({ "/blob": data });
  // A body that is not a byte stream, in chunks larger than the reader's buffer, cut after one.
  const cutting = cutOnce("bytes=2000-99999");
  const source = await openHttpSource(`${server.url}/blob`, { fetch: cutting, retryBaseMs: 1 });
  const reader = new BounceReader(source.stream(2000, 98_000), 300);
  try {
    assert.ok(reader.reused);
    const got = new Uint8Array(98_000);
    let at = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      assert.ok(value.length <= 300);
      got.set(value, at);
      at += value.length;
    }
    assert.equal(at, 98_000);
    assert.deepEqual(got, data.slice(2000));
    assert.equal(server.requests.at(-1)!.range, "bytes=3000-99999");
  } finally {
    await reader.cancel();
    await source.close();
    await server.close();
  }
});

Deno.test("redactText hides the credentials of every URL, token and signature in a text", () => {
  assert.equal(
    redactText(
      "error sending request for url (http://u:p@h:1/m.tar?X-Amz-Signature=s): refused; " +
        "see https://h/x?y=1, Authorization: Bearer abc.def, X-Amz-Credential=AKID/2024&token=zz",
    ),
    "error sending request for url (http://***@h:1/m.tar?<redacted>): refused; " +
      "see https://h/x?<redacted>, Authorization: Bearer <redacted>, " +
      "X-Amz-Credential=<redacted>&token=<redacted>",
  );
  assert.equal(
    redactText("s3://bucket/key and /models/m.tar"),
    "s3://bucket/key and /models/m.tar",
  );
});
