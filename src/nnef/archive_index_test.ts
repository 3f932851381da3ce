import assert from "node:assert/strict";
import { memorySource } from "../storage/memory_source.ts";
import { sha256Hex } from "../storage/sha256.ts";
import { openArchive } from "./archive.ts";
import { ARCHIVE_INDEX_MEMBER } from "./archive_index.ts";
import { writeTar } from "./tar.ts";

const encoder = new TextEncoder();

/** A tar with an index first (padded to a fixed size so offsets are known) and two members. */
function indexedTar(edit: (members: Record<string, unknown>[]) => unknown = (m) => m): Uint8Array {
  const a = encoder.encode("version 1.0;\n");
  const b = new Uint8Array(1000).fill(3);
  // index header 0, index payload 512..2560 (2048 bytes), a: header 2560, data 3072; b: header 3584, data 4096
  const members = [
    { name: "graph.nnef", offset: 3072, size: a.length, sha256: sha256Hex(a) },
    { name: "w.dat", offset: 4096, size: b.length, sha256: sha256Hex(b) },
  ];
  const json = JSON.stringify({ format: "rill-archive-index", version: 1, members: edit(members) });
  const index = encoder.encode(json.padEnd(2048, " "));
  return writeTar([
    { name: ARCHIVE_INDEX_MEMBER, data: index },
    { name: "graph.nnef", data: a },
    { name: "w.dat", data: b },
  ]);
}

Deno.test("openArchive lists the members of rill-index.json without walking headers", async () => {
  const archive = await openArchive(memorySource(indexedTar(), "m.tar"));
  assert.equal(archive.indexed, true);
  assert.deepEqual(archive.members().map((m) => [m.name, m.offset, m.size]), [
    ["graph.nnef", 3072, 13],
    [ARCHIVE_INDEX_MEMBER, 512, 2048],
    ["w.dat", 4096, 1000],
  ]);
  assert.deepEqual(await archive.read("w.dat"), new Uint8Array(1000).fill(3));
  assert.equal(archive.indexBytesRead, 2 + 512 + 2048);
});

Deno.test("openArchive rejects an index member that is not JSON", async () => {
  const tar = writeTar([{ name: ARCHIVE_INDEX_MEMBER, data: encoder.encode("{oops") }]);
  await assert.rejects(
    () => openArchive(memorySource(tar, "m.tar")),
    (e: unknown) =>
      e instanceof SyntaxError && /^m\.tar: rill-index\.json is not JSON/.test(e.message),
  );
});

Deno.test("openArchive rejects an index of another format", async () => {
  const tar = writeTar([{ name: ARCHIVE_INDEX_MEMBER, data: encoder.encode('{"format":"x"}') }]);
  await assert.rejects(
    () => openArchive(memorySource(tar, "m.tar")),
    /m\.tar: rill-index\.json: field 'format' is not "rill-archive-index"/,
  );
});

Deno.test("openArchive rejects an index member past the end of the object", async () => {
  await assert.rejects(
    () =>
      openArchive(
        memorySource(indexedTar((m) => [m[0], { ...m[1], offset: 1 << 20 }]), "m.tar"),
      ),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message.startsWith("m.tar: rill-index.json: members[1] ('w.dat'): [1048576, 1049576)"),
  );
});

Deno.test("openArchive rejects an index member inside the index", async () => {
  await assert.rejects(
    () => openArchive(memorySource(indexedTar((m) => [{ ...m[0], offset: 1024 }]), "m.tar")),
    /members\[0\] \('graph\.nnef'\): offset 1024 is not a block boundary after the index \(which ends at 2560\)/,
  );
});

Deno.test("openArchive rejects an index member named ../x", async () => {
  await assert.rejects(
    () => openArchive(memorySource(indexedTar((m) => [{ ...m[0], name: "../x" }]), "m.tar")),
    (e: unknown) =>
      e instanceof RangeError && e.message === "m.tar: member '../x' has a '..' component",
  );
});

Deno.test("openArchive rejects overlapping index members", async () => {
  await assert.rejects(
    () => openArchive(memorySource(indexedTar((m) => [m[0], { ...m[1], offset: 3072 }]), "m.tar")),
    /member '(w\.dat|graph\.nnef)' at 3072 overlaps/,
  );
});

Deno.test("openArchive rejects an index entry with a bad sha256", async () => {
  await assert.rejects(
    () => openArchive(memorySource(indexedTar((m) => [{ ...m[0], sha256: "abc" }]), "m.tar")),
    (e: unknown) =>
      e instanceof TypeError && /members\[0\]\.sha256 is not 64 lower-case hex/.test(e.message),
  );
});

Deno.test("openArchive rejects a member listed twice in the index", async () => {
  await assert.rejects(
    () =>
      openArchive(
        memorySource(indexedTar((m) => [m[0], { ...m[1], name: "graph.nnef" }]), "m.tar"),
      ),
    /members\[1\]: member 'graph\.nnef' is listed twice/,
  );
});
