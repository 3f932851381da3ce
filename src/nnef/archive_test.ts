import assert from "node:assert/strict";
import { memorySource } from "../storage/memory_source.ts";
import { openArchive } from "./archive.ts";
import { writeTar } from "./tar.ts";

const encoder = new TextEncoder();
const fixtures = new URL("../../../shared/fixtures/", import.meta.url);

function file(name: string, text: string): { name: string; data: Uint8Array } {
  return { name, data: encoder.encode(text) };
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("openArchive rejects a tar member named ../x", async () => {
  const tar = writeTar([file("graph.nnef", "version 1.0;"), file("../x", "evil")]);
  await assert.rejects(
    () => openArchive(memorySource(tar, "evil.tar")),
    (e: unknown) =>
      e instanceof RangeError && e.message === "evil.tar: member '../x' has a '..' component",
  );
});

Deno.test("openArchive rejects a tar member with an absolute path", async () => {
  const tar = writeTar([file("/etc/passwd", "root")]);
  await assert.rejects(
    () => openArchive(memorySource(tar, "abs.tar")),
    /abs\.tar: member '\/etc\/passwd' has an absolute path/,
  );
});

Deno.test("openArchive rejects a truncated tar", async () => {
  const tar = writeTar([file("graph.nnef", "version 1.0;"), {
    name: "w.dat",
    data: new Uint8Array(5000),
  }]);
  await assert.rejects(
    () => openArchive(memorySource(tar.subarray(0, 3000), "cut.tar")),
    (e: unknown) =>
      e instanceof RangeError &&
      /^cut\.tar: truncated tar: member 'w\.dat' needs 5000 bytes at offset 1536/.test(e.message),
  );
});

Deno.test("openArchive rejects a truncated gzip stream", async () => {
  const tgz = await gzip(writeTar([{ name: "w.dat", data: new Uint8Array(5000).fill(7) }]));
  await assert.rejects(
    () => openArchive(memorySource(tgz.subarray(0, tgz.length - 20), "cut.tgz")),
    (e: unknown) => e instanceof RangeError && /^cut\.tgz: cannot decompress gzip/.test(e.message),
  );
});

Deno.test("openArchive rejects a file that is neither gzip nor tar", async () => {
  await assert.rejects(
    () => openArchive(memorySource(encoder.encode("version 1.0;\n".repeat(60)), "graph.nnef")),
    (e: unknown) => e instanceof SyntaxError && /not a tar archive/.test(e.message),
  );
  await assert.rejects(() => openArchive(memorySource(new Uint8Array(0), "empty")), /empty file/);
});

Deno.test("openArchive strips ./, ignores dot-files and sorts members", async () => {
  const tar = writeTar([
    file("./w.dat", "w"),
    file("./graph.nnef", "g"),
    file("._graph.nnef", "apple"),
    file(".hidden/a.dat", "h"),
    file("sub/.DS_Store", "x"),
    file("sub/b.dat", "b"),
  ]);
  const archive = await openArchive(memorySource(tar, "m.tar"));
  assert.equal(archive.kind, "tar");
  assert.deepEqual(archive.members().map((m) => m.name), ["graph.nnef", "sub/b.dat", "w.dat"]);
  assert.ok(archive.has("graph.nnef"));
  assert.ok(!archive.has("._graph.nnef"));
  assert.equal(new TextDecoder().decode(await archive.read("sub/b.dat")), "b");
  await assert.rejects(() => archive.read("nope.dat"), /m\.tar: no member 'nope\.dat'/);
  await archive.close();
});

Deno.test("openArchive detects gzip by its magic, not its extension", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/model.bin`;
    await Deno.writeFile(path, await gzip(writeTar([file("graph.nnef", "version 1.0;")])));
    const archive = await openArchive(path);
    assert.equal(archive.kind, "tgz");
    assert.deepEqual(archive.members().map((m) => m.name), ["graph.nnef"]);
    assert.equal(new TextDecoder().decode(await archive.read("graph.nnef")), "version 1.0;");
    await archive.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openArchive reads a folder, skipping dot entries", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/sub`);
    await Deno.mkdir(`${dir}/.git`);
    await Deno.writeTextFile(`${dir}/graph.nnef`, "version 1.0;");
    await Deno.writeTextFile(`${dir}/sub/w.dat`, "0123456789");
    await Deno.writeTextFile(`${dir}/.git/config`, "x");
    const archive = await openArchive(dir);
    assert.equal(archive.kind, "folder");
    assert.deepEqual(archive.members(), [
      { name: "graph.nnef", offset: 0, size: 12 },
      { name: "sub/w.dat", offset: 0, size: 10 },
    ]);
    assert.equal(new TextDecoder().decode(await archive.readRange("sub/w.dat", 2, 3)), "234");
    const streamed = await new Response(archive.stream("sub/w.dat")).text();
    assert.equal(streamed, "0123456789");
    await assert.rejects(
      () => archive.readRange("sub/w.dat", 8, 3),
      /outside member 'sub\/w\.dat'/,
    );
    await archive.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openArchive reads a t2n export: graph.nnef and its .dat members", async () => {
  const archive = await openArchive(
    new URL("stories260K/nnef/stories260K_q40.nnef.tgz", fixtures).pathname,
  );
  assert.equal(archive.kind, "tgz");
  const names = archive.members().map((m) => m.name);
  assert.equal(names.length, 61);
  assert.ok(names.includes("graph.nnef"));
  const header = await archive.readRange("model.lm_head.weight.dat", 0, 128);
  assert.deepEqual([...header.subarray(0, 2)], [0x4e, 0xef]);
  const streamed = new Uint8Array(await new Response(archive.stream("graph.nnef")).arrayBuffer());
  assert.deepEqual(streamed, await archive.read("graph.nnef"));
  await archive.close();
});

Deno.test("openArchive refuses a member name that appears twice, in a tar and in a .tgz", async () => {
  // The second copy (zeros) would silently replace the first.
  const tar = writeTar([
    file("graph.nnef", "version 1.0;"),
    file("w.dat", "real"),
    { name: "./w.dat", data: new Uint8Array(4) },
  ]);
  for (const [name, bytes] of [["dup.tar", tar], ["dup.tgz", await gzip(tar)]] as const) {
    await assert.rejects(
      () => openArchive(memorySource(bytes, name)),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message === `${name}: member 'w.dat' appears twice (data at offsets 1536 and 2560)`,
    );
  }
});
