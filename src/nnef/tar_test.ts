import assert from "node:assert/strict";
import type { ByteSource } from "../storage/byte_source.ts";
import { memorySource } from "../storage/memory_source.ts";
import {
  indexTar,
  normalizeMemberName,
  parsePaxRecords,
  TAR_BLOCK,
  tarEnd,
  tarEntryHeader,
  tarPadding,
  writeTar,
} from "./tar.ts";

const encoder = new TextEncoder();

function bytes(n: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * seed + 11) & 0xff);
}

/** A memory source that records the ranges read. */
function recording(data: Uint8Array): ByteSource & { ranges: [number, number][] } {
  const inner = memorySource(data, "test.tar");
  const ranges: [number, number][] = [];
  return {
    ...inner,
    ranges,
    read(offset: number, length: number) {
      ranges.push([offset, length]);
      return inner.read(offset, length);
    },
  };
}

function setChecksum(block: Uint8Array): void {
  block.fill(0x20, 148, 156);
  const sum = block.reduce((a, b) => a + b, 0);
  block.set(encoder.encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
}

Deno.test("writeTar and indexTar agree on names, offsets and sizes", async () => {
  const long = `${"very-long-directory-name/".repeat(6)}model.layers.0.weight.dat`;
  const files = [
    { name: "graph.nnef", data: encoder.encode("version 1.0;") },
    { name: "w.dat", data: bytes(1000) },
    { name: long, data: bytes(3, 5) },
    { name: "ünïcode.dat", data: bytes(0) },
  ];
  for (const longNames of ["pax", "gnu"] as const) {
    const tar = writeTar(files, { longNames });
    const { entries } = await indexTar(memorySource(tar));
    assert.deepEqual(entries.map((e) => e.name), files.map((f) => f.name));
    for (const [i, e] of entries.entries()) {
      assert.deepEqual(tar.subarray(e.offset, e.offset + e.size), files[i]!.data);
    }
  }
});

Deno.test("indexTar reads only headers, never large payloads", async () => {
  const big = bytes(200_000);
  const tar = writeTar([
    { name: "a.dat", data: big },
    { name: "b.dat", data: big },
    { name: "graph.nnef", data: bytes(10) },
  ]);
  const source = recording(tar);
  const index = await indexTar(source);
  assert.equal(index.entries.length, 3);
  for (const [offset, length] of source.ranges) {
    for (const e of index.entries.slice(0, 2)) {
      assert.ok(
        offset + length <= e.offset || offset >= e.offset + e.size,
        `read [${offset}, +${length}) hits a payload`,
      );
    }
  }
  assert.ok(index.bytesRead <= 3 * TAR_BLOCK + 4096, `read ${index.bytesRead} bytes`);
});

Deno.test("indexTar coalesces the headers of small members", async () => {
  const files = Array.from({ length: 40 }, (_, i) => ({ name: `n${i}.dat`, data: bytes(100) }));
  const source = recording(writeTar(files));
  const index = await indexTar(source);
  assert.equal(index.entries.length, 40);
  assert.ok(source.ranges.length < 20, `${source.ranges.length} reads`);
});

Deno.test("indexTar skips directories and links and uses the ustar prefix", async () => {
  const dir = tarEntryHeader("models/", 0);
  dir[156] = "5".charCodeAt(0);
  setChecksum(dir);
  const link = tarEntryHeader("alias.dat", 0);
  link[156] = "2".charCodeAt(0);
  setChecksum(link);
  const prefixed = tarEntryHeader("w.dat", 4);
  prefixed.set(encoder.encode("models/sub"), 345);
  setChecksum(prefixed);
  const tar = new Uint8Array([
    ...dir,
    ...link,
    ...prefixed,
    ...bytes(4),
    ...tarPadding(4),
    ...tarEnd(),
  ]);
  const { entries } = await indexTar(memorySource(tar));
  assert.deepEqual(entries.map((e) => e.name), ["models/sub/w.dat"]);
});

Deno.test("indexTar accepts a tar without its end marker", async () => {
  const tar = writeTar([{ name: "a", data: bytes(5) }]);
  const { entries } = await indexTar(memorySource(tar.subarray(0, tar.length - 1024)));
  assert.equal(entries.length, 1);
});

Deno.test("indexTar rejects a tar truncated inside a member", async () => {
  const tar = writeTar([{ name: "a.dat", data: bytes(2000) }]);
  await assert.rejects(
    () => indexTar(memorySource(tar.subarray(0, 1500), "cut.tar")),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message ===
        "cut.tar: truncated tar: member 'a.dat' needs 2000 bytes at offset 512, the archive ends at 1500",
  );
});

Deno.test("indexTar rejects a tar truncated inside a header", async () => {
  const tar = writeTar([{ name: "a.dat", data: bytes(10) }, { name: "b.dat", data: bytes(10) }]);
  await assert.rejects(
    () => indexTar(memorySource(tar.subarray(0, 1024 + 100), "cut.tar")),
    /cut\.tar: truncated tar: header at offset 1024 needs 512 bytes, the archive ends at 1124/,
  );
});

Deno.test("indexTar rejects a header with a bad checksum", async () => {
  const tar = writeTar([{ name: "a.dat", data: bytes(10) }, { name: "b.dat", data: bytes(10) }]);
  tar[1024] = "c".charCodeAt(0);
  await assert.rejects(
    () => indexTar(memorySource(tar, "bad.tar")),
    (e: unknown) =>
      e instanceof SyntaxError &&
      /^bad\.tar: bad tar header checksum at offset 1024/.test(e.message),
  );
});

Deno.test("indexTar rejects a file that is not a tar", async () => {
  await assert.rejects(
    () => indexTar(memorySource(encoder.encode("version 1.0;\n".repeat(100)), "graph.nnef")),
    /graph\.nnef: not a tar archive \(no valid tar header at offset 0\)/,
  );
});

Deno.test("parsePaxRecords reads lengths in bytes and rejects bad records", () => {
  const records = parsePaxRecords(encoder.encode("18 path=ünï.dat\n11 size=42\n"));
  assert.equal(records.get("path"), "ünï.dat");
  assert.equal(records.get("size"), "42");
  assert.throws(() => parsePaxRecords(encoder.encode("99 path=x\n")), /bad record at byte 0/);
});

Deno.test("normalizeMemberName applies tract's rules", () => {
  assert.equal(normalizeMemberName("./a/b.dat", "t"), "a/b.dat");
  assert.equal(normalizeMemberName("a//b.dat", "t"), "a/b.dat");
  assert.equal(normalizeMemberName("./", "t"), undefined);
  assert.equal(normalizeMemberName("a/.b/c", "t"), undefined);
  assert.throws(
    () => normalizeMemberName("a/../../b", "t"),
    /member 'a\/\.\.\/\.\.\/b' has a '\.\.' component/,
  );
});
