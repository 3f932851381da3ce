import assert from "node:assert/strict";
import { createServer, readServeConfig } from "../cli/serve.ts";
import { openArchive } from "../src/nnef/archive.ts";
import { openDiskCache } from "../src/storage/disk_cache.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { writeIndexedTar } from "./_archives.ts";

async function makeArchive(dir: string): Promise<Uint8Array> {
  const members = [
    { name: "graph.nnef", data: new TextEncoder().encode("version 1.0;\n") },
    { name: "a.dat", data: new Uint8Array(70_000).map((_, i) => i % 253) },
    { name: "b.dat", data: new Uint8Array(3000).fill(9) },
  ];
  return await writeIndexedTar(`${dir}/m.tar`, members);
}

Deno.test("a remote archive's verified members are reused from RILL_CACHE_DIR without requests", async () => {
  const dir = await Deno.makeTempDir();
  const bytes = await makeArchive(dir);
  const server = startTestServer({ "/m.tar": bytes }, { etag: '"e1"' });
  const saved = Deno.env.get("RILL_CACHE_DIR");
  Deno.env.set("RILL_CACHE_DIR", `${dir}/cache`);
  try {
    const first = await openArchive(`${server.url}/m.tar`);
    const names = first.members().map((m) => m.name).filter((n) => n !== "rill-index.json");
    const loader = first.loader();
    const targets = new Map(names.map((n) => [n, new Uint8Array(first.member(n)!.size)]));
    await Promise.all(names.map((n) => loader.load(n, targets.get(n)!)));
    await loader.close();
    await first.close();
    const afterFirst = server.requests.length;

    const second = await openArchive(`${server.url}/m.tar`);
    const opening = server.requests.length - afterFirst;
    const loader2 = second.loader();
    for (const n of names) {
      const target = new Uint8Array(second.member(n)!.size);
      await loader2.load(n, target);
      assert.deepEqual(target, targets.get(n), n);
      assert.deepEqual(await second.read(n), targets.get(n), n);
    }
    assert.equal(loader2.stats.membersFromCache, names.length);
    await loader2.close();
    await second.close();
    console.log(
      `first open + load: ${afterFirst} requests; second open: ${opening} request(s), ` +
        `then ${server.requests.length - afterFirst - opening} for ${names.length} cached members`,
    );
    assert.equal(opening, 1);
    assert.equal(server.requests.length, afterFirst + opening);
  } finally {
    if (saved === undefined) Deno.env.delete("RILL_CACHE_DIR");
    else Deno.env.set("RILL_CACHE_DIR", saved);
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corrupted cache entry is detected by its sha256 and fetched again", async () => {
  const dir = await Deno.makeTempDir();
  const bytes = await makeArchive(dir);
  const server = startTestServer({ "/m.tar": bytes }, { etag: '"e1"' });
  const cache = openDiskCache(`${dir}/cache`)!;
  try {
    const first = await openArchive(`${server.url}/m.tar`, { cache });
    const good = await first.read("a.dat");
    await first.close();
    for await (const sub of Deno.readDir(cache.dir)) {
      for await (const f of Deno.readDir(`${cache.dir}/${sub.name}`)) {
        const path = `${cache.dir}/${sub.name}/${f.name}`;
        const data = await Deno.readFile(path);
        data[0]! ^= 0xff;
        await Deno.writeFile(path, data);
      }
    }
    const second = await openArchive(`${server.url}/m.tar`, { cache });
    const before = server.requests.length;
    const target = new Uint8Array(good.length);
    const loader = second.loader();
    await loader.load("a.dat", target);
    assert.deepEqual(target, good);
    assert.equal(loader.stats.membersFromCache, 0);
    assert.ok(server.requests.length > before);
    await loader.close();
    await second.close();
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openDiskCache is off unless a folder or RILL_CACHE_DIR is given", () => {
  const saved = Deno.env.get("RILL_CACHE_DIR");
  Deno.env.delete("RILL_CACHE_DIR");
  try {
    assert.equal(openDiskCache(), undefined);
    assert.equal(openDiskCache("/tmp/x")?.dir, "/tmp/x");
  } finally {
    if (saved !== undefined) Deno.env.set("RILL_CACHE_DIR", saved);
  }
});

Deno.test("a cache folder that cannot be written is an error at start, not a cache silently off", async () => {
  const dir = await Deno.makeTempDir();
  const bytes = await makeArchive(dir);
  const server = startTestServer({ "/m.tar": bytes }, { etag: '"e1"' });
  // Under a plain file: no folder can be made there, whoever runs the test.
  await Deno.writeTextFile(`${dir}/file`, "");
  const saved = Deno.env.get("RILL_CACHE_DIR");
  Deno.env.set("RILL_CACHE_DIR", `${dir}/file/cache`);
  try {
    await assert.rejects(
      openArchive(`${server.url}/m.tar`),
      (e: unknown) =>
        e instanceof Error &&
        e.message.startsWith(`RILL_CACHE_DIR '${dir}/file/cache/members' cannot be written (`),
    );
    assert.equal(server.requests.length, 0);
    await assert.rejects(
      createServer({ ...readServeConfig([], () => undefined), cacheDir: `${dir}/file/c` }, () => {})
        .loaded,
      /^Error: --cache-dir \(RILL_CACHE_DIR\) '.*\/file\/c' cannot be written/,
    );
  } finally {
    if (saved === undefined) Deno.env.delete("RILL_CACHE_DIR");
    else Deno.env.set("RILL_CACHE_DIR", saved);
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
