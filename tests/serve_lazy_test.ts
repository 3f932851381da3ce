/**
 * Serving before the whole model arrived: a service loaded from a throttled URL is ready once
 * the graph is built and its first answer waits only for the weights it reads.
 */
import assert from "node:assert/strict";
import { type Kernels, loadKernels } from "../kernels/mod.ts";
import { loadService } from "../src/engine/load_service.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { readMembers, writeIndexedTar } from "./_archives.ts";
import { startServer, STORIES_ARCHIVE, STORIES_TOKENIZER } from "./_serve_harness.ts";

/** The greedy answer of the server at `location` to one chat request, and what /ready said. */
async function firstAnswer(location: string, kernels?: Kernels): Promise<{
  text: string;
  readyBeforeWeights: boolean;
  bytes: number;
  placed: number;
}> {
  const loaded = await loadService(location, {
    modelId: "stories",
    tokenizer: STORIES_TOKENIZER,
    ...(kernels === undefined ? {} : { kernels }),
  });
  let weightsIn = false;
  const weights = loaded.weightsReady.then((stats) => {
    weightsIn = true;
    return stats;
  });
  try {
    await using server = await startServer({}, loaded.service);
    const ready = await fetch(`${server.url}/ready`);
    await ready.body?.cancel();
    assert.equal(ready.status, 200);
    const readyBeforeWeights = !weightsIn;
    const answer = await server.client().chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "Once upon a time" }],
      max_tokens: 16,
      temperature: 0,
    });
    const text = answer.choices[0]!.message.content!;
    return { text, readyBeforeWeights, bytes: loaded.bytes, placed: (await weights).bytes };
  } finally {
    await weights.catch(() => {});
  }
}

for (const where of ["TypeScript", "WASM kernels"]) {
  Deno.test(`a server loading from a throttled URL is ready before the weights arrived and answers as from the local file (${where})`, async () => {
    const dir = await Deno.makeTempDir();
    const kernels = where === "TypeScript" ? undefined : await loadKernels({ threads: 1 });
    try {
      // The export re-packed as a range-readable tar with the converter's index.
      const tar = await writeIndexedTar(`${dir}/m.nnef.tar`, await readMembers(STORIES_ARCHIVE));
      const local = await firstAnswer(`${dir}/m.nnef.tar`, kernels);
      // About one second for the whole archive.
      const source = startTestServer({ "/m.nnef.tar": tar }, { bytesPerSecond: tar.length });
      try {
        const remote = await firstAnswer(`${source.url}/m.nnef.tar`, kernels);
        assert.ok(remote.readyBeforeWeights, "/ready answered 200 while weights were arriving");
        assert.equal(remote.text, local.text);
        assert.ok(remote.text.length > 0);
        assert.equal(remote.placed, remote.bytes);
        assert.equal(remote.bytes, local.bytes);
      } finally {
        await source.close();
      }
    } finally {
      kernels?.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
