import assert from "node:assert/strict";
import { openArchive } from "./archive.ts";
import { archiveStream, type ModelStream, openModelStream } from "./model_stream.ts";

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
