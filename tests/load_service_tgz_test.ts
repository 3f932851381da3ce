/**
 * loadService over a `.tgz` that carries its tokenizer: one pass over the archive serves both
 * the weights and the tokenizer's members, whatever tar headers name them; with the
 * converter's index it answers before the weights have arrived.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { tokenizerFiles } from "../models/tokenizer_files.ts";
import { llama2cToHfTokenizer } from "../src/tokenizer/llama2c_to_hf.ts";
import { parseLlama2cTokenizer } from "../src/tokenizer/llama2c_tokenizer.ts";
import { type LoadedService, loadService } from "../src/engine/load_service.ts";
import type { InferenceService } from "../src/engine/service.ts";
import { openArchive } from "../src/nnef/archive.ts";
import { TAR_BLOCK, type TarWriteEntry, type TarWriteOptions, writeTar } from "../src/nnef/tar.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { gzip, readMembers, writeIndexedTar } from "./_archives.ts";
import { STORIES_ARCHIVE, STORIES_TOKENIZER } from "./_serve_harness.ts";

/**
 * The stories260K export's members and its tokenizer as the converter writes them: the graph
 * first, then the weights smallest first (the graph is built once the small ones, read rather
 * than placed, have passed), with the tokenizer after the first half of them (well past the
 * index in the stream, so that it is not met before the index's list is read).
 */
async function storiesWithTokenizer(): Promise<TarWriteEntry[]> {
  const hf = llama2cToHfTokenizer(
    parseLlama2cTokenizer(await Deno.readFile(STORIES_TOKENIZER), STORIES_TOKENIZER),
  );
  const tokenizer = tokenizerFiles(hf, 512).map((f) => ({ name: f.name, data: f.bytes }));
  const members = await readMembers(STORIES_ARCHIVE);
  const dat = (e: TarWriteEntry) => e.name.endsWith(".dat");
  const weights = members.filter(dat).sort((a, b) => a.data.length - b.data.length);
  const half = weights.length >> 1;
  return [
    ...members.filter((e) => !dat(e)),
    ...weights.slice(0, half),
    ...tokenizer,
    ...weights.slice(half),
  ];
}

/** The prompt ids and greedy continuation ids of `service`. */
async function greedy(service: InferenceService): Promise<{ prompt: number[]; ids: number[] }> {
  const prompt = service.encodePrompt("Once upon a time");
  for await (
    const event of service.generate(prompt, {
      sampling: { temperature: 0 },
      stop: [],
      maxTokens: 12,
    })
  ) if (event.type === "done") return { prompt, ids: [...event.ids] };
  throw new Error("generate ended without a done event");
}

/** Loads `location` with the archive's own tokenizer, runs `greedy` once every weight is in. */
async function answer(location: string): Promise<
  { prompt: number[]; ids: number[]; loaded: LoadedService }
> {
  const loaded = await loadService(location, { modelId: "stories" });
  await loaded.weightsReady;
  return { ...await greedy(loaded.service), loaded };
}

/** Bytes the server was asked for by `requests` of an object of `size` bytes. */
function requestedBytes(requests: readonly { range: string | null }[], size: number): number {
  let sum = 0;
  for (const r of requests) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(r.range ?? "");
    if (m === null) {
      sum += size;
      continue;
    }
    const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    sum += end - Number(m[1]) + 1;
  }
  return sum;
}

Deno.test("loadService over a remote .tgz downloads it once and answers as from the local tar", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tar = await writeIndexedTar(join(dir, "m.nnef.tar"), await storiesWithTokenizer());
    const tgz = await gzip(tar);
    const local = await answer(join(dir, "m.nnef.tar"));
    const server = startTestServer({ "/m.nnef.tgz": tgz });
    try {
      const remote = await answer(`${server.url}/m.nnef.tgz`);
      assert.match(remote.loaded.tokenizerFrom, /\(tokenizer\.json\)$/);
      assert.deepEqual(remote.prompt, local.prompt);
      assert.deepEqual(remote.ids, local.ids);
      assert.equal(remote.ids.length, 12);
      assert.equal(remote.loaded.bytes, local.loaded.bytes);
      for (const { loaded } of [local, remote]) {
        assert.equal((await loaded.weightsReady).bytes, loaded.bytes);
      }
      // A probe of the head, then one request streaming the rest: each byte asked for once.
      assert.equal(server.requests.length, 2, JSON.stringify(server.requests));
      assert.ok(
        requestedBytes(server.requests, tgz.length) <= tgz.length + (16 << 10),
        JSON.stringify(server.requests),
      );
    } finally {
      await server.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const longNames of ["pax", "gnu"] as const satisfies TarWriteOptions["longNames"][]) {
  Deno.test(`loadService reads a .tgz's tokenizer.json from a ${longNames} long-name entry`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const entries = await storiesWithTokenizer();
      // Past ustar's 100 bytes, so the name is only in the extended header; `./` is dropped.
      const long = (name: string) => `${"./".repeat(60)}${name}`;
      const renamed = entries.map((e) =>
        e.name.startsWith("tokenizer") ? { ...e, name: long(e.name) } : e
      );
      await Deno.writeFile(join(dir, "m.nnef.tgz"), await gzip(writeTar(renamed, { longNames })));
      await writeIndexedTar(join(dir, "m.nnef.tar"), entries);
      const local = await answer(join(dir, "m.nnef.tar"));
      const streamed = await answer(join(dir, "m.nnef.tgz"));
      assert.match(streamed.loaded.tokenizerFrom, /\(tokenizer\.json\)$/);
      assert.deepEqual(streamed.prompt, local.prompt);
      assert.deepEqual(streamed.ids, local.ids);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("loadService over a throttled converted .tgz answers before the weights have arrived", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tar = await writeIndexedTar(join(dir, "m.nnef.tar"), await storiesWithTokenizer());
    const tgz = await gzip(tar);
    const local = await answer(join(dir, "m.nnef.tar"));
    // About 1.2 s for the whole archive; the index, graph and tokenizer lead it.
    const server = startTestServer({ "/m.nnef.tgz": tgz }, { bytesPerSecond: tgz.length / 1.2 });
    try {
      const t0 = performance.now();
      const loaded = await loadService(`${server.url}/m.nnef.tgz`, { modelId: "stories" });
      const loadedMs = performance.now() - t0;
      let weightsMs: number | undefined;
      const weights = loaded.weightsReady.then((stats) => {
        weightsMs = performance.now() - t0;
        return stats;
      });
      weights.catch(() => {});
      try {
        assert.equal(weightsMs, undefined, "loadService resolved while the weights were arriving");
        assert.match(loaded.tokenizerFrom, /\(tokenizer\.json\)$/);
        // From the index, before the weights passed.
        assert.equal(loaded.bytes, local.loaded.bytes);
        // Each step waits for the weights it reads.
        const remote = await greedy(loaded.service);
        assert.deepEqual(remote.prompt, local.prompt);
        assert.deepEqual(remote.ids, local.ids);
        assert.equal((await weights).bytes, loaded.bytes);
        console.log(
          `throttled .tgz (${tgz.length} bytes): service in ${loadedMs.toFixed(0)} ms, ` +
            `weights in ${weightsMs!.toFixed(0)} ms`,
        );
        assert.ok(weightsMs! >= 1000, `the weights took ${weightsMs} ms to arrive`);
        // The index, graph, tokenizer and small weights are the first third of the stream.
        assert.ok(weightsMs! - loadedMs >= 300, "answered well before the last weight arrived");
      } finally {
        await weights.catch(() => {});
      }
    } finally {
      await server.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadService over a converted .tgz that lacks a tokenizer member its index lists rejects, naming the archive and the member", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const all = await storiesWithTokenizer();
    const isTokenizer = (e: TarWriteEntry) => e.name.startsWith("tokenizer");
    const path = join(dir, "m.nnef.tar");
    const tar = await writeIndexedTar(path, [
      ...all.filter((e) => !isTokenizer(e)),
      ...all.filter(isTokenizer),
    ]);
    const archive = await openArchive(path);
    const first = Math.min(
      ...archive.members().filter((m) => m.name.startsWith("tokenizer")).map((m) => m.offset),
    );
    await archive.close();
    // The tar cut before its tokenizer members (their headers too), then ended properly.
    const cut = new Uint8Array(first - TAR_BLOCK + 2 * TAR_BLOCK);
    cut.set(tar.subarray(0, first - TAR_BLOCK));
    await Deno.writeFile(join(dir, "m.nnef.tgz"), await gzip(cut));
    await assert.rejects(
      loadService(join(dir, "m.nnef.tgz"), { modelId: "stories" }),
      (e: unknown) =>
        e instanceof RangeError &&
        /m\.nnef\.tgz: the \.tgz stream failed: member 'tokenizer\.json' listed in rill-index\.json is not in the stream$/
          .test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
