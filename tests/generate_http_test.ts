import assert from "node:assert/strict";
import { generate } from "../src/engine/generate.ts";
import { loadTokenizer } from "../src/tokenizer/load_tokenizer.ts";
import { loadModel } from "../src/graph/load_model.ts";
import { openArchive } from "../src/nnef/archive.ts";
import { openHttpSource } from "../src/storage/http_source.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { readMembers, writeIndexedTar } from "./_archives.ts";
import { GENERATION_FAULTS, GENERATION_RETRIES, startFaultProxy } from "./_fault_proxy.ts";
import { fixture, PROMPT } from "./_stories260k.ts";

async function greedy(source: Parameters<typeof loadModel>[0]): Promise<number[]> {
  const model = await loadModel(source);
  const tokenizer = await loadTokenizer(fixture("tok512.bin"));
  const out: number[] = [];
  for await (
    const id of generate(model, tokenizer, PROMPT, { maxTokens: 12, sampling: { temperature: 0 } })
  ) out.push(id);
  return out;
}

for (const variant of ["f32", "q40"]) {
  Deno.test(`generation from a URL equals generation from the local file (stories260K ${variant})`, async () => {
    const tgzPath = fixture(`nnef/stories260K_${variant}.nnef.tgz`);
    const dir = await Deno.makeTempDir();
    const tar = await writeIndexedTar(`${dir}/m.tar`, await readMembers(tgzPath));
    const server = startTestServer({
      "/m.nnef.tgz": await Deno.readFile(tgzPath),
      "/m.nnef.tar": tar,
    }, { etag: '"v1"' });
    const proxy = startFaultProxy(server.url, { seed: 42, ...GENERATION_FAULTS });
    try {
      const local = await greedy(tgzPath);
      for (const path of ["/m.nnef.tgz", "/m.nnef.tar"]) {
        const before = proxy.stats.requests;
        const source = await openHttpSource(`${proxy.url}${path}`, {
          ...GENERATION_RETRIES,
          probeBytes: 16 << 10,
        });
        const archive = await openArchive(source, { cache: false });
        try {
          assert.deepEqual(await greedy(archive), local, path);
          console.log(
            `${variant} ${path} (${archive.indexed ? "indexed" : archive.kind}) through the ` +
              `fault proxy: ${proxy.stats.requests - before} requests, ` +
              `${source.bytesFetched} bytes fetched of ${(await source.size())}`,
          );
        } finally {
          await archive.close();
          await source.close();
        }
      }
      assert.ok(proxy.stats.errors + proxy.stats.drops > 0);
    } finally {
      await proxy.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
