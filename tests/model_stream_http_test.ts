import assert from "node:assert/strict";
import { writeArchive } from "../src/nnef/archive_writer.ts";
import { type ArchiveMember, openArchive } from "../src/nnef/archive.ts";
import { openModelStream } from "../src/nnef/model_stream.ts";
import { openHttpSource } from "../src/storage/http_source.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { gatedSource } from "../src/storage/_gated_source.ts";
import { gzip, writeIndexedTar } from "./_archives.ts";
import { fixture } from "./_stories260k.ts";

const TGZ = fixture("nnef/stories260K_q40.nnef.tgz");

Deno.test("openModelStream streams a .tgz over HTTP once, delivering each member into its target", async () => {
  const tgz = await Deno.readFile(TGZ);
  const local = await openArchive(TGZ);
  const server = startTestServer({ "/m.nnef.tgz": tgz });
  const source = await openHttpSource(`${server.url}/m.nnef.tgz`);
  const stream = await openModelStream(source);
  try {
    assert.equal(stream.kind, "tgz");
    const names = local.members().map((m) => m.name);
    // Half the members are asked for before they arrive, half after (they are held meanwhile).
    const early = new Map(
      names.filter((_, i) => i % 2 === 0).map((n) => {
        const target = new Uint8Array(local.member(n)!.size);
        return [n, { target, done: stream.load(n, target) }];
      }),
    );
    const order: ArchiveMember[] = [];
    const late = new Map<string, Uint8Array>();
    const loads: Promise<void>[] = [];
    for await (const m of stream.members()) {
      order.push(m);
      if (early.has(m.name)) continue;
      const target = new Uint8Array(m.size);
      late.set(m.name, target);
      loads.push(stream.load(m.name, target));
    }
    await Promise.all([...loads, ...[...early.values()].map((e) => e.done)]);
    for (const n of names) {
      const got = early.get(n)?.target ?? late.get(n)!;
      assert.deepEqual(got, await local.read(n), n);
    }
    assert.deepEqual(order.map((m) => m.name).sort(), [...names].sort());
    assert.equal(server.requests.length, 2, "a probe, then one streaming request");
    console.log(
      `.tgz stream: ${server.requests.length} requests, ${source.bytesFetched} bytes fetched ` +
        `for a ${tgz.length}-byte object, ${stream.stats.bytesWritten} bytes written into targets`,
    );
    assert.ok(source.bytesFetched <= tgz.length + 1024);
  } finally {
    await stream.close();
    await source.close();
    await local.close();
    await server.close();
  }
});

Deno.test("openModelStream hands over early .tgz members while the rest is still downloading", async () => {
  const members = ["graph.nnef", "a.dat", "b.dat"].map((name, i) => ({
    name,
    data: new Uint8Array(i === 0 ? 100 : 200_000).map((_, j) => (j * (i + 3)) % 256),
  }));
  const dir = await Deno.makeTempDir();
  const tgz = await gzip(await writeIndexedTar(`${dir}/m.tar`, members));
  const source = gatedSource(tgz, Math.floor(tgz.length / 2));
  const stream = await openModelStream(source);
  try {
    const graph = new Uint8Array(100);
    let last = false;
    const lastTarget = new Uint8Array(200_000);
    const lastLoad = stream.load("b.dat", lastTarget).then(() => (last = true));
    await stream.load("graph.nnef", graph);
    assert.deepEqual(graph, members[0]!.data);
    assert.equal(last, false, "the last member has not arrived yet");
    source.release();
    await lastLoad;
    assert.deepEqual(lastTarget, members[2]!.data);
    assert.deepEqual(await stream.read("a.dat"), members[1]!.data);
  } finally {
    await stream.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openModelStream checks a converted .tgz against its index sha256", async () => {
  const dir = await Deno.makeTempDir();
  const data = new Uint8Array(10_000).fill(5);
  await writeArchive(`${dir}/m.tar`, [{ name: "w.dat", size: data.length, produce: () => data }]);
  const tar = await Deno.readFile(`${dir}/m.tar`);
  const probe = await openArchive(`${dir}/m.tar`);
  const offset = probe.member("w.dat")!.offset;
  await probe.close();
  tar[offset + 77]! ^= 1;
  const server = startTestServer({ "/m.tgz": await gzip(tar) });
  const stream = await openModelStream(`${server.url}/m.tgz`, { cache: false });
  try {
    await assert.rejects(
      () => stream.load("w.dat", new Uint8Array(data.length)),
      (e: unknown) =>
        e instanceof Error &&
        e.message.startsWith(`${server.url}/m.tgz: member 'w.dat' has sha256`),
    );
  } finally {
    await stream.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openModelStream rejects pending loads of a truncated .tgz", async () => {
  const tgz = await Deno.readFile(TGZ);
  const server = startTestServer({ "/cut.tgz": tgz.slice(0, tgz.length >> 1) });
  const stream = await openModelStream(`${server.url}/cut.tgz`, { cache: false });
  try {
    await assert.rejects(
      () => stream.load("absent.dat", new Uint8Array(8)),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message.startsWith(`${server.url}/cut.tgz: the .tgz stream failed`),
    );
  } finally {
    await stream.close();
    await server.close();
  }
});

Deno.test("openModelStream over an indexed tar lists every member at once and loads by range", async () => {
  const dir = await Deno.makeTempDir();
  const data = new Uint8Array(50_000).map((_, i) => i % 7);
  await writeArchive(`${dir}/m.tar`, [
    { name: "graph.nnef", size: 4, produce: () => new Uint8Array([1, 2, 3, 4]) },
    { name: "w.dat", size: data.length, produce: () => data },
  ]);
  const server = startTestServer({ "/m.tar": await Deno.readFile(`${dir}/m.tar`) });
  const stream = await openModelStream(`${server.url}/m.tar`, { cache: false });
  try {
    assert.equal(stream.kind, "tar");
    const names: string[] = [];
    for await (const m of stream.members()) names.push(m.name);
    assert.deepEqual(names, ["graph.nnef", "rill-index.json", "w.dat"]);
    const target = new Uint8Array(data.length);
    await stream.load("w.dat", target);
    assert.deepEqual(target, data);
    assert.deepEqual(await stream.read("graph.nnef"), new Uint8Array([1, 2, 3, 4]));
    assert.equal(server.requests.length, 2);
  } finally {
    await stream.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
