import assert from "node:assert/strict";
import { concatBytes } from "../storage/bytes.ts";
import { writeTar } from "./tar.ts";
import { type TarStreamEntry, TarStreamWalk } from "./tar_stream.ts";

const encoder = new TextEncoder();

/** The entries a walk hands out and the payloads it passes, the tar pushed `step` bytes at a time. */
function walk(tar: Uint8Array, step: number, take = (_: TarStreamEntry) => true) {
  const seen: { entry: TarStreamEntry; data: Uint8Array }[] = [];
  let parts: Uint8Array[] = [];
  let ended = 0;
  const w = new TarStreamWalk("t.tar", 1 << 30, {
    begin(entry) {
      if (!take(entry)) return false;
      seen.push({ entry, data: new Uint8Array(0) });
      parts = [];
      return true;
    },
    payload: (bytes) => parts.push(bytes.slice()),
    end() {
      const last = seen.at(-1)!;
      last.data = concatBytes(parts, last.entry.size);
      ended++;
    },
  });
  for (let at = 0; at < tar.length; at += step) w.push(tar.subarray(at, at + step));
  w.finish();
  return { seen, ended, walk: w };
}

Deno.test("TarStreamWalk hands out every entry and its payload, whatever the chunk size", () => {
  const long = `${"d/".repeat(60)}weights.dat`;
  const tar = writeTar([
    { name: "graph.nnef", data: encoder.encode("version 1.0;") },
    { name: "empty.dat", data: new Uint8Array(0) },
    { name: long, data: new Uint8Array(1300).map((_, i) => i % 251) },
  ]);
  for (const step of [1, 7, 512, 4096]) {
    const { seen, ended, walk: w } = walk(tar, step);
    assert.deepEqual(seen.map((s) => [s.entry.name, s.entry.size]), [
      ["graph.nnef", 12],
      ["empty.dat", 0],
      [long, 1300],
    ]);
    assert.equal(ended, 3);
    assert.deepEqual(seen[2]!.data, new Uint8Array(1300).map((_, i) => i % 251));
    assert.equal(new TextDecoder().decode(seen[0]!.data), "version 1.0;");
    assert.ok(w.ended);
  }
});

Deno.test("TarStreamWalk skips the payload of an entry not taken", () => {
  const tar = writeTar([
    { name: "a.dat", data: new Uint8Array(700).fill(1) },
    { name: "b.dat", data: new Uint8Array(3).fill(2) },
  ]);
  const { seen } = walk(tar, 100, (e) => e.name === "b.dat");
  assert.deepEqual(seen.map((s) => [s.entry.name, s.entry.offset, [...s.data]]), [
    ["b.dat", 512 + 1024 + 512, [2, 2, 2]],
  ]);
});

Deno.test("TarStreamWalk.finish names a member cut short", () => {
  const tar = writeTar([{ name: "w.dat", data: new Uint8Array(2000) }]);
  assert.throws(
    () => walk(tar.subarray(0, 1500), 256),
    /^RangeError: t\.tar: truncated tar: member 'w\.dat' needs 2000 bytes at offset 512, the archive ends at 1500$/,
  );
});

Deno.test("TarStreamWalk refuses an entry past its budget before its payload passes", () => {
  const tar = writeTar([{ name: "w.dat", data: new Uint8Array(4096) }]);
  const w = new TarStreamWalk("t.tar", 2048, {
    begin: () => assert.fail("an entry over the budget began"),
    payload: () => {},
    end: () => {},
  });
  assert.throws(() => w.push(tar.subarray(0, 512)), /declares 4096 bytes/);
});
