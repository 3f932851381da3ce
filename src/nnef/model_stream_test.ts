import assert from "node:assert/strict";
import { writeArchive } from "./archive_writer.ts";
import { memorySource } from "../storage/memory_source.ts";
import { gatedSource } from "../storage/_gated_source.ts";
import { openArchive } from "./archive.ts";
import { ARCHIVE_INDEX_MEMBER } from "./archive_index.ts";
import { archiveStream, openModelStream } from "./model_stream.ts";
import type { ModelStream } from "./member_stream.ts";
import { TAR_BLOCK, tarPadded, writeTar } from "./tar.ts";

const TGZ = new URL(
  "../../../shared/fixtures/stories260K/nnef/stories260K_f32.nnef.tgz",
  import.meta.url,
).pathname;

Deno.test("ModelStream.onMember writes a claimed member's bytes once, straight into its target", async () => {
  const local = await openArchive(TGZ);
  const stream = await openModelStream(TGZ);
  try {
    const log: string[] = [];
    const targets = new Map<string, Uint8Array>();
    const writes = new Map<string, [number, number][]>();
    const arrivals: Promise<void>[] = [];
    stream.onMember((m) => {
      log.push(`begin ${m.name}`);
      if (!m.name.endsWith(".dat")) return undefined;
      writes.set(m.name, []);
      return {
        // Asked for its view at every write (a kernels' memory may have grown meanwhile).
        target: (size: number) => {
          let t = targets.get(m.name);
          if (t === undefined) {
            log.push(`target ${m.name}`);
            t = new Uint8Array(size);
            targets.set(m.name, t);
          }
          return t;
        },
        onProgress: (start: number, end: number) => writes.get(m.name)!.push([start, end]),
        arrived: (done: Promise<void>) => arrivals.push(done),
      };
    });
    for await (const _ of stream.members()) { /* drain: every member has begun */ }
    await Promise.all(arrivals);
    const dats = local.members().filter((m) => m.name.endsWith(".dat"));
    assert.equal(targets.size, dats.length);
    let chunked = 0;
    for (const m of dats) {
      // The target is taken as the member begins, before any of its payload was seen.
      assert.equal(log[log.indexOf(`begin ${m.name}`) + 1], `target ${m.name}`, m.name);
      const ranges = writes.get(m.name)!;
      let at = 0;
      for (const [start, end] of ranges) {
        assert.equal(start, at, `${m.name}: writes are contiguous, each byte once`);
        at = end;
      }
      assert.equal(at, m.size, m.name);
      if (ranges.length > 1) chunked++;
      assert.deepEqual(targets.get(m.name), await local.read(m.name), m.name);
    }
    assert.ok(chunked > 0, "large members arrive in several writes as they stream");
    assert.equal(
      stream.stats.bytesWritten,
      dats.reduce((n, m) => n + m.size, 0),
      "nothing written twice",
    );
    await assert.rejects(stream.read(dats[0]!.name), /loaded into a target, not kept/);
  } finally {
    await stream.close();
    await local.close();
  }
});

for (const kind of ["tgz stream", "archive"] as const) {
  Deno.test(`ModelStream.onMember offers a member to later hooks only while unclaimed (${kind})`, async () => {
    const local = await openArchive(TGZ);
    // A given archive is left open by its stream.
    const stream: ModelStream = kind === "archive"
      ? archiveStream(local, { owns: false })
      : await openModelStream(TGZ);
    try {
      const first = new Set<string>();
      const secondSaw: string[] = [];
      const targets = new Map<string, Uint8Array>();
      const arrivals: Promise<void>[] = [];
      const take = (name: string, size: number) => {
        const target = new Uint8Array(size);
        targets.set(name, target);
        return { target, arrived: (done: Promise<void>) => void arrivals.push(done) };
      };
      let n = 0;
      stream.onMember((m) => {
        if (!m.name.endsWith(".dat") || n++ % 2 === 1) return undefined;
        first.add(m.name);
        return take(m.name, m.size);
      });
      stream.onMember((m) => {
        secondSaw.push(m.name);
        return take(m.name, m.size);
      });
      for await (const _ of stream.members()) { /* drain */ }
      await Promise.all(arrivals);
      assert.ok(first.size > 1);
      assert.deepEqual(secondSaw.filter((name) => first.has(name)), []);
      assert.equal(first.size + secondSaw.length, local.members().length);
      for (const [name, target] of targets) assert.deepEqual(target, await local.read(name), name);
    } finally {
      await stream.close();
    }
    assert.ok((await local.read("graph.nnef")).length > 0);
    await local.close();
  });
}

/** Bytes that gzip does not shrink (so a gate on the compressed stream falls where expected). */
function noise(size: number, seed: number): Uint8Array {
  let x = seed;
  return new Uint8Array(size).map(() => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24);
}

const MEMBERS = [
  { name: "graph.nnef", data: noise(100, 1) },
  { name: "a.dat", data: noise(100_000, 2) },
  { name: "b.dat", data: noise(100_000, 3) },
];

/** The converter's tar of `MEMBERS` (index first) and each member's payload offset. */
async function indexedTar(): Promise<{ tar: Uint8Array; offsets: Map<string, number> }> {
  const dir = await Deno.makeTempDir();
  try {
    const index = await writeArchive(
      `${dir}/m.tar`,
      MEMBERS.map((m) => ({ name: m.name, size: m.data.length, produce: () => m.data })),
    );
    const tar = await Deno.readFile(`${dir}/m.tar`);
    return { tar, offsets: new Map(index.members.map((m) => [m.name, m.offset])) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** `bytes` with `[at, at + remove)` replaced by `insert`. */
function splice(bytes: Uint8Array, at: number, remove: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length - remove + insert.length);
  out.set(bytes.subarray(0, at));
  out.set(insert, at);
  out.set(bytes.subarray(at + remove), at + insert.length);
  return out;
}

Deno.test("ModelStream.members lists an indexed .tgz's members from its index, before they pass", async () => {
  const { tar } = await indexedTar();
  // Past the index and graph.nnef, well before b.dat.
  const source = gatedSource(await gzip(tar), 20_000);
  const stream = await openModelStream(source);
  try {
    const begun: string[] = [];
    const targets = new Map<string, Uint8Array>();
    const arrivals: Promise<void>[] = [];
    // Claims the index too: the stream still reads it.
    stream.onMember((m) => {
      begun.push(m.name);
      if (m.name === "b.dat") return undefined;
      const target = new Uint8Array(m.size);
      targets.set(m.name, target);
      return { target, arrived: (done) => void arrivals.push(done) };
    });
    const listed = [];
    for await (const m of stream.members()) listed.push(m);
    assert.deepEqual(listed.map((m) => m.name), [
      ARCHIVE_INDEX_MEMBER,
      "graph.nnef",
      "a.dat",
      "b.dat",
    ]);
    assert.ok(!begun.includes("b.dat"), `listed before b.dat began (begun: ${begun})`);
    for (const [i, m] of MEMBERS.entries()) {
      assert.equal(listed[i + 1]!.size, m.data.length, m.name);
      assert.match(listed[i + 1]!.sha256 ?? "", /^[0-9a-f]{64}$/, m.name);
    }
    // Asked for by name before it begins, as a listed member.
    const b = new Uint8Array(listed[3]!.size);
    targets.set("b.dat", b);
    const loadB = stream.load("b.dat", b);
    // Known absent at once, not at the end of the stream.
    await assert.rejects(stream.load("c.dat", new Uint8Array(1)), /gated\.tgz: no member 'c\.dat'/);
    await assert.rejects(stream.read("c.dat"), /gated\.tgz: no member 'c\.dat'/);
    source.release();
    await loadB;
    await Promise.all(arrivals);
    // b.dat, asked for already, is not offered to the hook.
    assert.deepEqual(begun, [ARCHIVE_INDEX_MEMBER, "graph.nnef", "a.dat"]);
    for (const m of MEMBERS) assert.ok(sameBytes(targets.get(m.name)!, m.data), m.name);
  } finally {
    await stream.close();
  }
});

/** Byte equality without node:assert's diff of two large arrays. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

Deno.test("ModelStream.members goes on from the index's list when it comes during a yield", async () => {
  const { tar } = await indexedTar();
  // Small chunks: the index begins in one and ends in a later one.
  const stream = await openModelStream(gatedSource(await gzip(tar), Infinity, 64));
  try {
    let graphBegun!: () => void;
    const graph = new Promise<void>((resolve) => (graphBegun = resolve));
    stream.onMember((m) => {
      if (m.name === "graph.nnef") graphBegun();
      return undefined;
    });
    const names: string[] = [];
    for await (const m of stream.members()) {
      names.push(m.name);
      // Still at the index's yield when its list is read.
      if (names.length === 1) await graph;
    }
    assert.deepEqual(names, [ARCHIVE_INDEX_MEMBER, "graph.nnef", "a.dat", "b.dat"]);
  } finally {
    await stream.close();
  }
});

Deno.test("openModelStream fails a .tgz that lacks a member its index lists", async () => {
  const { tar, offsets } = await indexedTar();
  const header = offsets.get("b.dat")! - TAR_BLOCK;
  const cut = splice(tar, header, tar.length - header - 2 * TAR_BLOCK, new Uint8Array(0));
  const stream = await openModelStream(memorySource(await gzip(cut), "cut.tgz"));
  try {
    const a = new Uint8Array(MEMBERS[1]!.data.length);
    const loadA = stream.load("a.dat", a);
    await assert.rejects(
      stream.load("b.dat", new Uint8Array(MEMBERS[2]!.data.length)),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          `cut.tgz: the .tgz stream failed: member 'b.dat' listed in ${ARCHIVE_INDEX_MEMBER} is not in the stream`,
    );
    await loadA;
    assert.ok(sameBytes(a, MEMBERS[1]!.data));
  } finally {
    await stream.close();
  }
});

Deno.test("openModelStream fails a .tgz with a member its index does not list", async () => {
  const { tar, offsets } = await indexedTar();
  const extra = writeTar([{ name: "x.dat", data: new Uint8Array(10).fill(7) }]);
  const header = offsets.get("b.dat")! - TAR_BLOCK;
  // x.dat's header and payload, without writeTar's end blocks, before b.dat.
  const spliced = splice(tar, header, 0, extra.subarray(0, TAR_BLOCK + tarPadded(10)));
  const stream = await openModelStream(memorySource(await gzip(spliced), "extra.tgz"));
  try {
    await assert.rejects(
      stream.load("b.dat", new Uint8Array(MEMBERS[2]!.data.length)),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          `extra.tgz: the .tgz stream failed: member 'x.dat' at offset ${
            header + TAR_BLOCK
          } is not listed in ${ARCHIVE_INDEX_MEMBER}`,
    );
    await assert.rejects(stream.read("x.dat"), /is not listed in rill-index\.json/);
  } finally {
    await stream.close();
  }
});

Deno.test("openModelStream fails a .tgz whose member name appears twice, whatever the index", async () => {
  const tar = writeTar([
    { name: "graph.nnef", data: new TextEncoder().encode("version 1.0;") },
    { name: "w.dat", data: new Uint8Array(10).fill(7) },
    { name: "./w.dat", data: new Uint8Array(10) },
  ]);
  const stream = await openModelStream(memorySource(await gzip(tar), "dup.tgz"));
  try {
    await assert.rejects(
      stream.read("graph.nnef").then(() => stream.read("missing.dat")),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          "dup.tgz: the .tgz stream failed: member 'w.dat' appears twice (again at offset 2560)",
    );
  } finally {
    await stream.close();
  }
});
