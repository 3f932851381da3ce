/**
 * A load that stalls (every body stops half-way, the connection left open, each request timed
 * out and retried) ends at its deadline, for the whole load or for one member, with an error
 * that names the archive's URL (redacted) and what it was waiting for.
 */
import assert from "node:assert/strict";
import { resolveModel } from "../models/resolve.ts";
import { loadModel } from "../src/graph/load_model.ts";
import { openModelStream } from "../src/nnef/model_stream.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { readMembers, writeIndexedTar } from "./_archives.ts";
import { startFaultProxy } from "./_fault_proxy.ts";
import { STORIES_ARCHIVE } from "./_serve_harness.ts";

/** Retries that would go on for minutes: only a deadline ends them. */
const PATIENT = { retries: 1000, retryBaseMs: 1, retryMaxMs: 5, timeoutMs: 100 };
const SECRET = "?X-Amz-Credential=AKIDSECRET&X-Amz-Signature=deadbeefsecret";

async function indexedTar(): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  try {
    return await writeIndexedTar(`${dir}/m.nnef.tar`, await readMembers(STORIES_ARCHIVE));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts `e` is an error naming the redacted URL and never the presigned query. */
function redactedError(e: unknown, url: string, pattern: RegExp): boolean {
  assert.ok(e instanceof Error);
  assert.ok(e.message.includes(`${url}?<redacted>`), e.message);
  assert.doesNotMatch(e.message, /SECRET|deadbeef/i);
  assert.match(e.message, pattern);
  return true;
}

Deno.test("a load whose every body stalls fails at its deadline, naming the URL and the member", async () => {
  const upstream = startTestServer({ "/m.nnef.tar": await indexedTar() });
  const proxy = startFaultProxy(upstream.url, { seed: 1, stallRate: 1, spareFirst: 1 });
  const url = `${proxy.url}/m.nnef.tar`;
  try {
    await assert.rejects(
      loadModel(url + SECRET, {
        open: { cache: false, http: PATIENT, loadTimeoutMs: 1500 },
        loader: { memberTimeoutMs: 0 },
      }),
      (e) =>
        redactedError(
          e,
          url,
          /not loaded within 1\.5 s \(RILL_LOAD_TIMEOUT\); still waiting for '[^']+' \(\d+ of \d+ bytes\)/,
        ),
    );
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

Deno.test("a member that stalls fails at the member deadline, saying how far it got", async () => {
  const upstream = startTestServer({ "/m.nnef.tar": await indexedTar() });
  const proxy = startFaultProxy(upstream.url, { seed: 2, stallRate: 1, spareFirst: 1 });
  const url = `${proxy.url}/m.nnef.tar`;
  try {
    await assert.rejects(
      loadModel(url + SECRET, {
        open: { cache: false, http: PATIENT, loadTimeoutMs: 60_000 },
        loader: { memberTimeoutMs: 400 },
      }),
      (e) =>
        redactedError(
          e,
          url,
          /member '[^']+' stalled: \d+ of \d+ bytes in 0\.4 s, the most a member may take \(RILL_MEMBER_TIMEOUT\)/,
        ),
    );
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

Deno.test("a .tgz stream that stalls fails at the member deadline, naming where it stopped", async () => {
  const upstream = startTestServer({ "/m.nnef.tgz": await Deno.readFile(STORIES_ARCHIVE) });
  const proxy = startFaultProxy(upstream.url, { seed: 3, stallRate: 1, spareFirst: 1 });
  const url = `${proxy.url}/m.nnef.tgz`;
  try {
    await assert.rejects(
      loadModel(url + SECRET, {
        open: { cache: false, http: PATIENT, loadTimeoutMs: 60_000 },
        loader: { memberTimeoutMs: 400 },
      }),
      (e) =>
        redactedError(
          e,
          url,
          /stalled (in member '[^']+' \(\d+ of \d+ bytes\)|between two members) for 0\.4 s/,
        ),
    );
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

Deno.test("a load whose open stalls fails at its deadline, saying it was still being opened", async () => {
  const upstream = startTestServer({ "/m.nnef.tar": await indexedTar() }, { stallFirstMs: 2000 });
  const url = `${upstream.url}/m.nnef.tar`;
  try {
    await assert.rejects(
      openModelStream(url + SECRET, {
        cache: false,
        http: { ...PATIENT, timeoutMs: 10_000 },
        loadTimeoutMs: 300,
      }),
      (e) =>
        redactedError(
          e,
          url,
          /not loaded within 0\.3 s \(RILL_LOAD_TIMEOUT\); it was still being opened$/,
        ),
    );
  } finally {
    await upstream.close();
  }
});

Deno.test("a hub download whose body stalls fails at the member deadline, the endpoint redacted", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () =>
      new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode("{"));
          },
        }),
      ),
  );
  const cacheDir = await Deno.makeTempDir();
  try {
    const endpoint = `http://user:hubsecret@127.0.0.1:${server.addr.port}`;
    await assert.rejects(
      resolveModel("hf:org/tiny", {
        cacheDir,
        hfEndpoint: endpoint,
        memberTimeoutMs: 300,
        log: () => {},
      }),
      (e: Error) => {
        assert.match(
          e.message,
          /GET http:\/\/\*\*\*@127\.0\.0\.1:\d+\/org\/tiny\/resolve\/main\/config\.json: not done within 0\.3 s \(RILL_MEMBER_TIMEOUT\)/,
        );
        assert.doesNotMatch(e.message, /hubsecret/);
        return true;
      },
    );
  } finally {
    await server.shutdown();
    await Deno.remove(cacheDir, { recursive: true });
  }
});
