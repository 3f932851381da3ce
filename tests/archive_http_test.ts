import assert from "node:assert/strict";
import { openArchive } from "../src/nnef/archive.ts";
import { writeTar } from "../src/nnef/tar.ts";
import { openHttpSource } from "../src/storage/http_source.ts";
import { type SeenRequest, startTestServer } from "../src/storage/_test_server.ts";
import { assertSameArchive, readMembers, serveTar, writeIndexedTar } from "./_archives.ts";
import { fixture } from "./_stories260k.ts";

const TGZ = fixture("nnef/stories260K_f32.nnef.tgz");

/** The stories260K f32 export re-packed as an uncompressed tar, written to a temp file. */
async function makeTar(dir: string): Promise<{ path: string; bytes: Uint8Array }> {
  const bytes = writeTar(await readMembers(TGZ));
  const path = `${dir}/stories260K_f32.nnef.tar`;
  await Deno.writeFile(path, bytes);
  return { path, bytes };
}

function requestedRanges(requests: SeenRequest[]): [number, number][] {
  return requests.flatMap((r) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(r.range ?? "");
    return m === null ? [] : [[Number(m[1]), Number(m[2])] as [number, number]];
  });
}

Deno.test("openArchive over HTTP indexes a tar from its headers and reads the same bytes as from disk", async () => {
  await using served = await serveTar(makeTar, { etag: '"v1"' });
  const { bytes, server, local, remote } = served;
  const indexRequests = server.requests.length;
  const indexRanges = requestedRanges(server.requests);
  const indexBytes = indexRanges.reduce(
    (n, [a, b]) => n + Math.min(b, bytes.length - 1) - a + 1,
    0,
  );
  console.log(
    `HTTP index of a ${bytes.length}-byte tar with ${local.members().length} members: ` +
      `${indexRequests} requests, ${indexBytes} bytes fetched ` +
      `(${
        (100 * indexBytes / bytes.length).toFixed(2)
      }%), archive.indexBytesRead ${remote.indexBytesRead}`,
  );
  assert.equal(remote.kind, "tar");
  assert.ok(indexBytes < 0.05 * bytes.length, `${indexBytes} bytes to index`);
  for (const [a, b] of indexRanges.slice(1)) {
    for (const m of local.members()) {
      if (m.size <= 512) continue;
      assert.ok(
        b < m.offset || a >= m.offset + m.size,
        `range ${a}-${b} reads the payload of ${m.name}`,
      );
    }
  }
  await assertSameArchive(remote, local);
});

Deno.test("openArchive over HTTP reads the tar once when the server ignores Range", async () => {
  await using served = await serveTar(makeTar, { ignoreRange: true });
  const { server, local, remote } = served;
  await assertSameArchive(remote, local);
  assert.equal(server.requests.length, 1);
});

Deno.test("openArchive over HTTP retries a server that answers 503 twice", async () => {
  await using served = await serveTar(makeTar, { failFirst: 2, etag: '"v1"' }, {
    http: { retryBaseMs: 1 },
  });
  const { server, local, remote } = served;
  assert.equal(
    server.requests[0]!.range,
    server.requests[2]!.range,
  );
  await assertSameArchive(remote, local);
});

Deno.test("openArchive over HTTP streams a .tgz once and lists the same members as from disk", async () => {
  const tgz = await Deno.readFile(TGZ);
  const server = startTestServer({ "/stories.nnef.tgz": tgz });
  const local = await openArchive(TGZ);
  const source = await openHttpSource(`${server.url}/stories.nnef.tgz`);
  const remote = await openArchive(source);
  try {
    assert.equal(remote.kind, "tgz");
    await assertSameArchive(remote, local);
    assert.ok(source.bytesFetched <= tgz.length + 1024, `${source.bytesFetched} bytes fetched`);
  } finally {
    await remote.close();
    await source.close();
    await local.close();
    await server.close();
  }
});

Deno.test("openArchive over HTTP fails at once on 404 with the URL", async () => {
  const server = startTestServer({});
  try {
    await assert.rejects(
      () => openArchive(`${server.url}/missing.tar?token=secret`),
      (e: unknown) =>
        e instanceof Error &&
        e.message === `GET ${server.url}/missing.tar?<redacted>: 404 Not Found`,
    );
  } finally {
    await server.close();
  }
});

Deno.test("openArchive over HTTP refuses a plain tar that no validator pins, and takes an indexed one", async () => {
  const dir = await Deno.makeTempDir();
  const { bytes } = await makeTar(dir);
  const indexed = await writeIndexedTar(`${dir}/i.tar`, await readMembers(TGZ));
  const server = startTestServer({ "/m.tar": bytes, "/i.tar": indexed });
  try {
    await assert.rejects(
      () => openArchive(`${server.url}/m.tar`),
      (e: unknown) =>
        e instanceof TypeError &&
        e.message.startsWith(
          `${server.url}/m.tar: the server sends neither ETag nor Last-Modified, and the tar ` +
            "has no rill-index.json to check its members against",
        ),
    );
    // Each member is pinned by the index's sha256 instead: a new version of the object,
    // put on the server once opened, fails the members it changed instead of mixing in.
    const remote = await openArchive(`${server.url}/i.tar`, { cache: false });
    const local = await openArchive(`${dir}/i.tar`);
    try {
      await assertSameArchive(remote, local);
      const m = local.members().find((m) => m.name.endsWith(".dat") && m.size > 1000)!;
      const changed = indexed.slice();
      changed[m.offset + 500]! ^= 1;
      server.put("/i.tar", changed);
      await assert.rejects(remote.read(m.name), /has sha256 [0-9a-f]{64}, the archive index says/);
    } finally {
      await remote.close();
      await local.close();
    }
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
