/** Archive fixtures shared by the HTTP archive tests. */
import assert from "node:assert/strict";
import { writeArchive } from "../src/nnef/archive_writer.ts";
import { type Archive, openArchive, type OpenArchiveOptions } from "../src/nnef/archive.ts";
import type { TarWriteEntry } from "../src/nnef/tar.ts";
import {
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from "../src/storage/_test_server.ts";

/** The members of the archive at `path` that `accept` takes (default: all), in archive order. */
export async function readMembers(
  path: string,
  accept: (name: string) => boolean = () => true,
): Promise<TarWriteEntry[]> {
  const archive = await openArchive(path);
  try {
    const entries: TarWriteEntry[] = [];
    for (const m of archive.members()) {
      if (accept(m.name)) entries.push({ name: m.name, data: await archive.read(m.name) });
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

/** `bytes` gzip'd, as a `.tgz` holds its tar. */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Asserts that `remote` lists the members of `local` and reads the same bytes for each. */
export async function assertSameArchive(remote: Archive, local: Archive): Promise<void> {
  assert.deepEqual(remote.members(), local.members());
  for (const m of local.members()) {
    assert.deepEqual(await remote.read(m.name), await local.read(m.name), m.name);
  }
}

/** A tar written to a temp folder, opened from disk and over HTTP from a test server. */
export interface ServedTar extends AsyncDisposable {
  readonly path: string;
  readonly bytes: Uint8Array;
  readonly server: TestServer;
  readonly local: Archive;
  readonly remote: Archive;
}

/**
 * Writes a tar with `make` into a new temp folder, serves it at `/m.tar` and opens it both
 * ways (local first); disposing closes both archives and the server and removes the folder.
 */
export async function serveTar(
  make: (dir: string) => Promise<{ path: string; bytes: Uint8Array }>,
  serverOptions: TestServerOptions = {},
  openOptions: OpenArchiveOptions = {},
): Promise<ServedTar> {
  const dir = await Deno.makeTempDir();
  const { path, bytes } = await make(dir);
  const server = startTestServer({ "/m.tar": bytes }, serverOptions);
  let local: Archive | undefined;
  let remote: Archive;
  try {
    local = await openArchive(path);
    remote = await openArchive(`${server.url}/m.tar`, openOptions);
  } catch (e) {
    await local?.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
  return {
    path,
    bytes,
    server,
    local,
    remote,
    async [Symbol.asyncDispose]() {
      await remote.close();
      await local.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
