import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ARCHIVE_INDEX_MEMBER } from "./archive_index.ts";
import { writeArchive } from "./archive_writer.ts";
import { openArchive } from "./archive.ts";

Deno.test("writeArchive puts the index first and records each member's data offset and sha256", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "a.tar");
    const long = `${"deep/".repeat(30)}weight.dat`;
    const payloads = [new Uint8Array([1, 2, 3]), new Uint8Array(1000).fill(7), new Uint8Array(0)];
    const names = ["graph.nnef", long, "empty.json"];
    const progress: number[] = [];
    const index = await writeArchive(
      path,
      names.map((name, i) => ({ name, size: payloads[i]!.length, produce: () => payloads[i]! })),
      (p) => progress.push(p.membersDone),
    );
    assert.deepEqual(progress, [1, 2, 3]);
    const bytes = await Deno.readFile(path);
    assert.equal(bytes.length % 512, 0);
    assert.equal(
      new TextDecoder().decode(bytes.subarray(0, ARCHIVE_INDEX_MEMBER.length)),
      ARCHIVE_INDEX_MEMBER,
    );
    assert.deepEqual(index.members.map((m) => m.name), names);
    for (const [i, m] of index.members.entries()) {
      assert.deepEqual(bytes.subarray(m.offset, m.offset + m.size), payloads[i]);
      assert.equal(m.sha256, createHash("sha256").update(payloads[i]!).digest("hex"));
    }
    const archive = await openArchive(path);
    try {
      const stored = JSON.parse(new TextDecoder().decode(await archive.read(ARCHIVE_INDEX_MEMBER)));
      assert.deepEqual(stored, index);
      assert.deepEqual(await archive.read(long), payloads[1]);
      assert.equal(archive.member(long)!.offset, index.members[1]!.offset);
    } finally {
      await archive.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeArchive leaves nothing behind when a member fails or lies about its size", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "b.tar");
    await assert.rejects(
      () =>
        writeArchive(path, [
          { name: "ok.dat", size: 2, produce: () => new Uint8Array(2) },
          {
            name: "bad.dat",
            size: 4,
            produce: () => {
              throw new RangeError("broken input");
            },
          },
        ]),
      /broken input/,
    );
    await assert.rejects(
      () => writeArchive(path, [{ name: "x.dat", size: 4, produce: () => new Uint8Array(3) }]),
      /Member 'x.dat' holds 3 bytes, 4 were announced/,
    );
    const left: string[] = [];
    for await (const e of Deno.readDir(dir)) left.push(e.name);
    assert.deepEqual(left, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
