import assert from "node:assert/strict";
import { type Archive, openArchive } from "../src/nnef/archive.ts";
import { writeTar } from "../src/nnef/tar.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { readMembers, writeIndexedTar } from "./_archives.ts";
import { startFaultProxy } from "./_fault_proxy.ts";
import { fixture as storiesFixture } from "./_stories260k.ts";

const TGZ = storiesFixture("nnef/stories260K_f32.nnef.tgz");

interface Fixture {
  readonly dir: string;
  /** Converted: `rill-index.json` first. */
  readonly indexed: Uint8Array;
  /** A plain tar of the same members (indexed by walking headers). */
  readonly plain: Uint8Array;
  readonly local: Archive;
}

async function fixture(): Promise<Fixture> {
  const dir = await Deno.makeTempDir();
  const entries = await readMembers(TGZ);
  // One member larger than a loader part, so parts of one member travel in parallel.
  entries.push({ name: "big.dat", data: new Uint8Array(300_000).map((_, i) => (i * 7) % 251) });
  const plain = writeTar(entries);
  return {
    dir,
    indexed: await writeIndexedTar(`${dir}/m.tar`, entries),
    plain,
    local: await openArchive(`${dir}/m.tar`),
  };
}

async function dispose(f: Fixture): Promise<void> {
  await f.local.close();
  await Deno.remove(f.dir, { recursive: true });
}

const http = { retries: 12, retryBaseMs: 1, retryMaxMs: 20, timeoutMs: 2000 };

/** Loads every member through `archive.loader()` into one buffer, checking each byte is written once. */
async function loadAll(archive: Archive, local: Archive): Promise<void> {
  const members = archive.members();
  const total = members.reduce((n, m) => n + m.size, 0);
  const heap = new Uint8Array(total);
  const writes = new Uint8Array(total);
  const loader = archive.loader({ concurrency: 3, partBytes: 1 << 16 });
  let at = 0;
  const loads = members.map((m) => {
    const base = at;
    at += m.size;
    return loader.load(m.name, heap.subarray(base, base + m.size), {
      onProgress(start, end) {
        for (let i = base + start; i < base + end; i++) writes[i]!++;
      },
    });
  });
  await Promise.all(loads);
  await loader.close();
  assert.ok(writes.every((n) => n === 1), "every byte position written exactly once");
  at = 0;
  for (const m of members) {
    assert.deepEqual(heap.subarray(at, at + m.size), await local.read(m.name), m.name);
    at += m.size;
  }
}

for (const kind of ["indexed", "plain"] as const) {
  Deno.test(`archive (${kind} tar) read through a fault-injecting proxy equals the local file`, async () => {
    const f = await fixture();
    const server = startTestServer({ "/m.tar": f[kind] }, { etag: '"v1"' });
    const proxy = startFaultProxy(server.url, {
      seed: kind === "indexed" ? 7 : 11,
      errorRate: 0.2,
      dropRate: 0.3,
      delayRate: 0.2,
      maxDelayMs: 15,
    });
    const remote = await openArchive(`${proxy.url}/m.tar`, { http, cache: false });
    try {
      assert.equal(remote.indexed, kind === "indexed");
      const names = remote.members().map((m) => m.name).filter((n) => n !== "rill-index.json");
      assert.deepEqual(
        names,
        f.local.members().map((m) => m.name).filter((n) => n !== "rill-index.json"),
      );
      for (const m of remote.members()) {
        assert.deepEqual(await remote.read(m.name), await f.local.read(m.name), m.name);
      }
      const dropsBefore = proxy.stats.drops;
      await loadAll(remote, f.local);
      assert.ok(proxy.stats.drops > dropsBefore, "some loader streams were cut and resumed");
      console.log(
        `${kind}: ${proxy.stats.requests} requests through the proxy: ${proxy.stats.errors} answered 503, ` +
          `${proxy.stats.drops} cut mid-body, ${proxy.stats.delays} delayed`,
      );
      assert.ok(proxy.stats.errors > 0 && proxy.stats.drops > 0 && proxy.stats.delays > 0);
    } finally {
      await remote.close();
      await proxy.close();
      await server.close();
      await dispose(f);
    }
  });
}

Deno.test("an object replaced between two ranges is an error, not a mix of two objects", async () => {
  const f = await fixture();
  const server = startTestServer({ "/m.tar": f.indexed }, { etag: '"v1"' });
  const remote = await openArchive(`${server.url}/m.tar`, { http, cache: false });
  try {
    const member = remote.members().find((m) => m.size > 20_000)!;
    const loader = remote.loader({ concurrency: 1, partBytes: 1 << 16 });
    const big = remote.member("big.dat")!;
    const target = new Uint8Array(big.size);
    let replaced = false;
    const load = loader.load("big.dat", target, {
      onProgress() {
        if (!replaced) server.put("/m.tar", f.plain, '"v2"');
        replaced = true;
      },
    });
    const changed = (e: unknown) =>
      e instanceof Error &&
      e.message.includes(`${server.url}/m.tar: 412`) &&
      e.message.includes('the object changed since it was opened (ETag "v1")');
    await assert.rejects(load, changed);
    await assert.rejects(() => remote.read(member.name), changed);
    await loader.close();
  } finally {
    await remote.close();
    await server.close();
    await dispose(f);
  }
});

Deno.test("403 and 404 fail at once through the proxy, naming the URL without its credentials", async () => {
  const server = startTestServer({});
  const proxy = startFaultProxy(server.url, {
    seed: 1,
    statusByPath: { "/private.tar": 403 },
  });
  const query = "?X-Amz-Credential=AKIDEXAMPLE%2F20260101&X-Amz-Signature=deadbeef";
  try {
    for (
      const [path, status] of [["/private.tar", "403 Forbidden"], ["/gone.tar", "404 Not Found"]]
    ) {
      const before = proxy.stats.requests;
      await assert.rejects(
        () => openArchive(`${proxy.url}${path}${query}`, { http, cache: false }),
        (e: unknown) =>
          e instanceof Error && e.message === `GET ${proxy.url}${path}?<redacted>: ${status}` &&
          !e.message.includes("AKIDEXAMPLE") && !e.message.includes("deadbeef"),
      );
      assert.equal(proxy.stats.requests - before, 1, `${path}: one request, no retry`);
    }
  } finally {
    await proxy.close();
    await server.close();
  }
});

Deno.test("retries against a server that always fails are bounded in count and time", async () => {
  const server = startTestServer({ "/m.tar": new Uint8Array(4096) });
  const proxy = startFaultProxy(server.url, { seed: 3, errorRate: 1 });
  const retries = 5;
  const retryMaxMs = 40;
  const started = performance.now();
  try {
    await assert.rejects(
      () =>
        openArchive(`${proxy.url}/m.tar`, {
          http: { retries, retryBaseMs: 10, retryMaxMs },
          cache: false,
        }),
      (e: unknown) =>
        e instanceof Error &&
        e.message ===
          `GET ${proxy.url}/m.tar: 503 Service Unavailable (gave up after ${retries + 1} attempts)`,
    );
    const elapsed = performance.now() - started;
    assert.equal(proxy.stats.requests, retries + 1);
    assert.ok(elapsed < retries * retryMaxMs + 1000, `${elapsed} ms`);
  } finally {
    await proxy.close();
    await server.close();
  }
});

Deno.test("a server that stalls mid-body is timed out and the member resumes from the byte reached", async () => {
  const f = await fixture();
  const server = startTestServer({ "/m.tar": f.indexed }, { etag: '"v1"' });
  const proxy = startFaultProxy(server.url, { seed: 5, stallRate: 0.3, spareFirst: 1 });
  const remote = await openArchive(`${proxy.url}/m.tar`, {
    http: { ...http, timeoutMs: 150 },
    cache: false,
  });
  try {
    await loadAll(remote, f.local);
    assert.deepEqual(await remote.read("big.dat"), await f.local.read("big.dat"));
    console.log(`${proxy.stats.requests} requests, ${proxy.stats.stalls} stalled mid-body`);
    assert.ok(proxy.stats.stalls > 0);
  } finally {
    await remote.close();
    await proxy.close();
    await server.close();
    await dispose(f);
  }
});
