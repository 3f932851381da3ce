import assert from "node:assert/strict";
import { openArchive } from "../src/nnef/archive.ts";
import { ARCHIVE_INDEX_MEMBER } from "../src/nnef/archive_index.ts";
import { openHttpSource } from "../src/storage/http_source.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { assertSameArchive, readMembers, serveTar, writeIndexedTar } from "./_archives.ts";
import { fixture } from "./_stories260k.ts";

const TGZ = fixture("nnef/stories260K_q40.nnef.tgz");

/** The stories260K Q4_0 export re-packed by the converter's writer, with its index first. */
async function makeIndexedTar(dir: string): Promise<{ path: string; bytes: Uint8Array }> {
  const path = `${dir}/stories260K_q40.nnef.tar`;
  return { path, bytes: await writeIndexedTar(path, await readMembers(TGZ)) };
}

Deno.test("openArchive indexes a converted tar over HTTP from rill-index.json in one request", async () => {
  await using served = await serveTar(makeIndexedTar, { etag: '"v1"' }, { cache: false });
  const { bytes, server, local, remote } = served;
  const requests = server.requests.length;
  const indexSize = remote.member(ARCHIVE_INDEX_MEMBER)!.size;
  console.log(
    `index of a ${bytes.length}-byte converted tar (${remote.members().length} members, ` +
      `${indexSize}-byte index): ${requests} request(s), ${remote.indexBytesRead} bytes used, ` +
      `first read bytes=0-${16 * 1024 - 1}`,
  );
  assert.equal(remote.indexed, true);
  assert.equal(local.indexed, true);
  assert.equal(remote.etag, '"v1"');
  assert.equal(requests, 1);
  assert.equal(server.requests[0]!.range, `bytes=0-${16 * 1024 - 1}`);
  assert.ok(remote.members().every((m) => m.name === ARCHIVE_INDEX_MEMBER || m.sha256));
  await assertSameArchive(remote, local);
  assert.ok(server.requests.slice(1).every((r) => r.ifMatch === '"v1"'));
});

Deno.test("openArchive reads a large index with a second range request", async () => {
  const dir = await Deno.makeTempDir();
  const { bytes } = await makeIndexedTar(dir);
  const server = startTestServer({ "/m.tar": bytes });
  const source = await openHttpSource(`${server.url}/m.tar`, { probeBytes: 1024 });
  const remote = await openArchive(source);
  try {
    const index = remote.member(ARCHIVE_INDEX_MEMBER)!;
    assert.ok(index.size > 1024);
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[1]!.range, `bytes=512-${512 + index.size - 1}`);
    assert.equal(source.bytesFetched, 1024 + index.size);
    assert.equal(remote.indexed, true);
  } finally {
    await remote.close();
    await source.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openArchive over HTTP rejects a member whose bytes do not match the index sha256", async () => {
  const dir = await Deno.makeTempDir();
  const { bytes } = await makeIndexedTar(dir);
  const probe = await openArchive(`${dir}/stories260K_q40.nnef.tar`);
  const victim = probe.members().find((m) => m.name.endsWith(".dat") && m.size > 4096)!;
  await probe.close();
  const tampered = bytes.slice();
  tampered[victim.offset + 200]! ^= 1;
  const server = startTestServer({ "/m.tar": tampered });
  const remote = await openArchive(`${server.url}/m.tar`, { cache: false });
  try {
    const mismatch = (e: unknown) =>
      e instanceof Error &&
      e.message.startsWith(`${server.url}/m.tar: member '${victim.name}' has sha256 `) &&
      e.message.endsWith(`the archive index says ${victim.sha256}`);
    await assert.rejects(() => remote.read(victim.name), mismatch);
    await assert.rejects(() => new Response(remote.stream(victim.name)).arrayBuffer(), mismatch);
    const loader = remote.loader();
    await assert.rejects(() => loader.load(victim.name, new Uint8Array(victim.size)), mismatch);
    await loader.close();
    assert.equal((await remote.readRange(victim.name, 0, 128)).length, 128);
  } finally {
    await remote.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MemberLoader writes every member into one buffer at its final offset, in priority order", async () => {
  await using served = await serveTar(makeIndexedTar, { etag: '"v1"' }, { cache: false });
  const { server, local, remote } = served;
  const members = remote.members();
  const offsets = new Map<string, number>();
  let total = 0;
  for (const m of members) {
    offsets.set(m.name, total);
    total += Math.ceil(m.size / 128) * 128;
  }
  // Stands for WASM memory: a growable buffer whose views go stale when it grows.
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 + Math.ceil(total / 65536) });
  memory.grow(Math.ceil(total / 65536));
  const loader = remote.loader({ concurrency: 2, partBytes: 1 << 16, coalesceBytes: 0 });
  const started: string[] = [];
  const written = new Map<string, [number, number][]>();
  const last = members.at(-1)!.name;
  const loads = members.map((m, i) =>
    loader.load(
      m.name,
      (size) => new Uint8Array(memory.buffer, offsets.get(m.name)!, size),
      {
        priority: i,
        onProgress(start, end) {
          if (start === 0) started.push(m.name);
          const spans = written.get(m.name) ?? [];
          spans.push([start, end]);
          written.set(m.name, spans);
        },
      },
    )
  );
  loader.prioritize(last);
  await Promise.all(loads);
  const heap = new Uint8Array(memory.buffer);
  for (const m of members) {
    const at = offsets.get(m.name)!;
    assert.deepEqual(heap.slice(at, at + m.size), await local.read(m.name), m.name);
    const spans = (written.get(m.name) ?? []).sort((a, b) => a[0] - b[0]);
    let next = 0;
    for (const [start, end] of spans) {
      assert.equal(start, next, `${m.name}: bytes ${start}-${end} written out of turn`);
      next = end;
    }
    assert.equal(next, m.size, m.name);
  }
  // The first two slots were taken before prioritize; the bumped member goes next.
  assert.ok(started.indexOf(last) <= 2, `${last} started at ${started.indexOf(last)}`);
  assert.equal(loader.stats.membersLoaded, members.length);
  assert.equal(
    loader.stats.bytesWritten,
    members.reduce((n, m) => n + m.size, 0),
  );
  console.log(
    `loader: ${members.length} members, ${loader.stats.bytesWritten} bytes, ` +
      `${server.requests.length} requests in all`,
  );
  await loader.close();
});

Deno.test("MemberLoader fetches neighbouring small members with one range request", async () => {
  await using served = await serveTar(makeIndexedTar, { etag: '"v1"' }, { cache: false });
  const { bytes, server, local, remote } = served;
  const members = remote.members();
  const opened = server.requests.length;
  const loader = remote.loader();
  const targets = members.map((m) => new Uint8Array(m.size));
  await Promise.all(members.map((m, i) => loader.load(m.name, targets[i]!)));
  for (const [i, m] of members.entries()) {
    assert.deepEqual(targets[i], await local.read(m.name), m.name);
  }
  const requests = server.requests.length - opened;
  const fetched = server.requests.slice(opened).reduce((n, r) => {
    const [a, b] = r.range!.slice(6).split("-").map(Number);
    return n + b! - a! + 1;
  }, 0);
  const payload = members.reduce((n, m) => n + m.size, 0);
  console.log(
    `coalesced loader: ${members.length} members (${payload} bytes) in ${requests} range ` +
      `requests, ${fetched} bytes requested (index open: ${opened} request)`,
  );
  assert.ok(requests <= 4, `${requests} requests`);
  assert.ok(fetched < bytes.length);
  await loader.close();
});

Deno.test("MemberLoader hands over each member as soon as it has arrived, long before the download ends", async () => {
  const dir = await Deno.makeTempDir();
  const { bytes } = await makeIndexedTar(dir);
  const server = startTestServer({ "/m.tar": bytes }, { bytesPerSecond: 2_000_000 });
  const remote = await openArchive(`${server.url}/m.tar`, { cache: false });
  try {
    const members = remote.members().filter((m) => m.offset > 16 << 10)
      .sort((a, b) => a.offset - b.offset);
    const loader = remote.loader();
    const start = performance.now();
    const arrived: [string, number][] = [];
    await Promise.all(members.map((m) =>
      loader.load(m.name, new Uint8Array(m.size)).then(() => {
        arrived.push([m.name, performance.now() - start]);
      })
    ));
    const total = performance.now() - start;
    assert.deepEqual(arrived.map(([n]) => n), members.map((m) => m.name));
    const first = arrived[0]![1];
    console.log(
      `throttled 2 MB/s: first member ready at ${first.toFixed(0)} ms, all ${members.length} ` +
        `at ${total.toFixed(0)} ms`,
    );
    assert.ok(first < total / 2, `first at ${first} ms of ${total} ms`);
    await loader.close();
  } finally {
    await remote.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
