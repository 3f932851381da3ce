import assert from "node:assert/strict";
import { memorySource } from "../storage/memory_source.ts";
import { openArchive } from "./archive.ts";
import { writeTar } from "./tar.ts";

const fixtures = new URL("../../../shared/fixtures/", import.meta.url).pathname;
const TGZ = `${fixtures}stories260K/nnef/stories260K_f32.nnef.tgz`;

const entries = [
  { name: "graph.nnef", data: new TextEncoder().encode("version 1.0;\n") },
  { name: "empty.dat", data: new Uint8Array(0) },
  { name: "w.dat", data: new Uint8Array(200_000).map((_, i) => (i * 13) % 256) },
];

Deno.test("MemberLoader loads folder members into targets", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const e of entries) await Deno.writeFile(`${dir}/${e.name}`, e.data);
    const archive = await openArchive(dir);
    const loader = archive.loader({ partBytes: 1 << 16 });
    for (const e of entries) {
      const target = new Uint8Array(e.data.length);
      await loader.load(e.name, target);
      assert.deepEqual(target, e.data, e.name);
    }
    assert.equal(loader.stats.bytesWritten, 200_013);
    await loader.close();
    await archive.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MemberLoader loads members of a .tgz opened whole", async () => {
  const archive = await openArchive(TGZ);
  const loader = archive.loader();
  const members = archive.members();
  const targets = members.map((m) => new Uint8Array(m.size));
  await Promise.all(members.map((m, i) => loader.load(m.name, targets[i]!)));
  for (const [i, m] of members.entries()) {
    assert.deepEqual(targets[i], await archive.read(m.name), m.name);
  }
  await loader.close();
  await archive.close();
});

Deno.test("MemberLoader rejects an unknown member, a target of the wrong size and a second load", async () => {
  const archive = await openArchive(memorySource(writeTar(entries), "m.tar"));
  const loader = archive.loader();
  await assert.rejects(
    () => loader.load("nope.dat", new Uint8Array(1)),
    (e: unknown) => e instanceof RangeError && e.message === "m.tar: no member 'nope.dat'",
  );
  await assert.rejects(
    () => loader.load("w.dat", new Uint8Array(10)),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message === "m.tar: target for member 'w.dat' has 10 bytes, the member has 200000",
  );
  const first = loader.load("w.dat", new Uint8Array(200_000));
  await assert.rejects(
    () => loader.load("w.dat", new Uint8Array(200_000)),
    /m\.tar: member 'w\.dat' is already loading/,
  );
  await first;
  await loader.close();
  await archive.close();
});

Deno.test("MemberLoader.close rejects loads still pending", async () => {
  const archive = await openArchive(memorySource(writeTar(entries), "m.tar"));
  const loader = archive.loader();
  const pending = loader.load("w.dat", new Uint8Array(200_000));
  await loader.close();
  await assert.rejects(pending, /m\.tar: loader closed before 'w\.dat' arrived/);
  await assert.rejects(() => loader.load("graph.nnef", new Uint8Array(13)), /load after close/);
  await archive.close();
});
