/** Archive fixtures shared by the HTTP archive tests. */
import assert from "node:assert/strict";
import { writeArchive } from "../models/archive_writer.ts";
import { type Archive, openArchive } from "../src/nnef/archive.ts";
import type { TarWriteEntry } from "../src/nnef/tar.ts";

/** Every member of the archive at `path` with its bytes, in archive order. */
export async function readMembers(path: string): Promise<TarWriteEntry[]> {
  const archive = await openArchive(path);
  try {
    const entries: TarWriteEntry[] = [];
    for (const m of archive.members()) {
      entries.push({ name: m.name, data: await archive.read(m.name) });
    }
    return entries;
  } finally {
    await archive.close();
  }
}

/** Writes `entries` at `path` with the converter's writer (index first); returns the file. */
export async function writeIndexedTar(
  path: string,
  entries: readonly TarWriteEntry[],
): Promise<Uint8Array> {
  await writeArchive(
    path,
    entries.map((e) => ({ name: e.name, size: e.data.length, produce: () => e.data })),
  );
  return await Deno.readFile(path);
}

/** Asserts that `remote` lists the members of `local` and reads the same bytes for each. */
export async function assertSameArchive(remote: Archive, local: Archive): Promise<void> {
  assert.deepEqual(remote.members(), local.members());
  for (const m of local.members()) {
    assert.deepEqual(await remote.read(m.name), await local.read(m.name), m.name);
  }
}
