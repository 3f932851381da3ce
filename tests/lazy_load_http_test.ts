/**
 * Weights on demand: a model loaded lazily into the kernels' memory from a URL (indexed tar,
 * `.tgz` stream, through the fault proxy) generates the same tokens as from the local file,
 * and its first forward pass runs while the last weights are still on the wire.
 */
import assert from "node:assert/strict";
import { convertModel } from "../models/convert.ts";
import { type Kernels, loadKernels } from "../kernels/mod.ts";
import { argmax } from "../src/engine/sampler.ts";
import { createSession } from "../src/engine/session.ts";
import { loadModel, type LoadOptions } from "../src/graph/load_model.ts";
import { kernelWeight, readsEagerly, variableDecls } from "../src/graph/weights.ts";
import { parseDocument } from "../src/nnef/parse.ts";
import { writeTar } from "../src/nnef/tar.ts";
import type { ByteSource } from "../src/storage/byte_source.ts";
import { openHttpSource } from "../src/storage/http_source.ts";
import { startTestServer } from "../src/storage/_test_server.ts";
import { gzip, readMembers, writeIndexedTar } from "./_archives.ts";
import { GENERATION_FAULTS, GENERATION_RETRIES, startFaultProxy } from "./_fault_proxy.ts";
import { fixture, PROMPT } from "./_stories260k.ts";

interface Run {
  readonly tokens: number[];
  /** When the middle step of the first forward pass started (performance.now()). */
  readonly middleStepAt: number;
  readonly weightsReadyAt: number;
  readonly bytes: number;
  /** True when weights were still arriving when the session was created. */
  readonly refusedSync: boolean;
}

/** Greedy tokens of a lazy load into `kernels`, the first pass starting at once. */
async function greedyLazy(
  source: string | ByteSource,
  kernels: Kernels,
  options: LoadOptions = {},
): Promise<Run> {
  const model = await loadModel(source, {
    kernels,
    lazy: true,
    open: { cache: false, http: GENERATION_RETRIES },
    ...options,
  });
  let weightsReadyAt = NaN;
  const ready = model.weightsReady.then(() => (weightsReadyAt = performance.now()));
  try {
    const session = await createSession(model);
    const refusedSync = session.executor.waiting;
    if (refusedSync) {
      // The synchronous step refuses to read weights that have not arrived.
      assert.throws(() => session.prefill(PROMPT), /has not arrived yet/);
    }
    let middleStepAt = NaN;
    let logits = await session.prefillAsync(PROMPT, (i, count) => {
      if (i === count >> 1) middleStepAt = performance.now();
    });
    const tokens: number[] = [];
    for (let i = 0; i < 12; i++) {
      tokens.push(argmax(logits));
      logits = await session.decodeAsync(tokens[i]!);
    }
    // A .tgz's weights are ready once its gzip trailer checked out, which may be after the
    // last step.
    await ready;
    return { tokens, middleStepAt, weightsReadyAt, bytes: model.loadStats!.bytes, refusedSync };
  } finally {
    await ready;
  }
}

/** stories260K.bin through the converter (llama2.c checkpoint to an indexed tar). */
async function fromCheckpoint(path: string, q40: boolean): Promise<Uint8Array> {
  await convertModel(fixture("stories260K.bin"), path, {
    tokenizer: fixture("tok512.bin"),
    q40,
  });
  return await Deno.readFile(path);
}

for (const variant of ["f32", "q40"]) {
  Deno.test(`loadModel lazy into the kernels: a URL generates as the local file (stories260K ${variant})`, async () => {
    const tgzPath = fixture(`nnef/stories260K_${variant}.nnef.tgz`);
    const dir = await Deno.makeTempDir();
    const tarPath = `${dir}/m.nnef.tar`;
    const tar = await writeIndexedTar(tarPath, await readMembers(tgzPath));
    const ckptPath = `${dir}/c.nnef.tar`;
    const ckpt = await fromCheckpoint(ckptPath, variant === "q40");
    const server = startTestServer({
      "/m.nnef.tgz": await Deno.readFile(tgzPath),
      "/m.nnef.tar": tar,
      "/c.nnef.tar": ckpt,
    }, { etag: '"v1"' });
    const proxy = startFaultProxy(server.url, { seed: 7, ...GENERATION_FAULTS });
    const kernels = await loadKernels({ threads: 1 });
    try {
      const local = await greedyLazy(tarPath, kernels);
      const localCkpt = await greedyLazy(ckptPath, kernels);
      const eager = await loadModel(tgzPath, { kernels });
      const embedded = eager.nodes.some((n) =>
        n.name === "linear" &&
        [...n.args.values()].some((a) =>
          a.kind === "tensor" && eager.values[a.id]!.fact.value !== undefined &&
          kernelWeight(eager.values[a.id]!.fact.value!) !== undefined
        )
      );
      assert.ok(embedded, "linear filters are views of the kernels' memory");
      for (
        const [label, url, expected] of [
          ["indexed tar", `${server.url}/m.nnef.tar`, local],
          ["tgz stream", `${server.url}/m.nnef.tgz`, local],
          ["converted llama2.c checkpoint", `${server.url}/c.nnef.tar`, localCkpt],
          ["indexed tar, fault proxy", `${proxy.url}/m.nnef.tar`, local],
          ["tgz stream, fault proxy", `${proxy.url}/m.nnef.tgz`, local],
          ["converted checkpoint, fault proxy", `${proxy.url}/c.nnef.tar`, localCkpt],
        ] as const
      ) {
        const source = await openHttpSource(url, { ...GENERATION_RETRIES, probeBytes: 16 << 10 });
        try {
          const remote = await greedyLazy(source, kernels);
          assert.deepEqual(remote.tokens, expected.tokens, label);
          console.log(
            `${variant} ${label}: ${source.requests} requests, ${source.bytesFetched} bytes ` +
              `fetched of ${await source.size()}, ${remote.bytes} bytes written into place`,
          );
        } finally {
          await source.close();
        }
      }
      assert.ok(proxy.stats.errors + proxy.stats.drops > 0);
    } finally {
      kernels.close();
      await proxy.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("loadModel lazy: the first forward pass runs before the last weight arrived", async () => {
  const dir = await Deno.makeTempDir();
  const tar = await writeIndexedTar(
    `${dir}/m.nnef.tar`,
    await readMembers(fixture("nnef/stories260K_f32.nnef.tgz")),
  );
  // About one second for the whole archive.
  const server = startTestServer({ "/m.nnef.tar": tar }, { bytesPerSecond: tar.length });
  const kernels = await loadKernels({ threads: 1 });
  try {
    const fast = await greedyLazy(`${dir}/m.nnef.tar`, kernels);
    const source = await openHttpSource(`${server.url}/m.nnef.tar`, { probeBytes: 16 << 10 });
    try {
      const slow = await greedyLazy(source, kernels, { loader: { concurrency: 2 } });
      assert.deepEqual(slow.tokens, fast.tokens);
      assert.ok(slow.refusedSync, "the synchronous step was refused while loading");
      assert.ok(
        slow.middleStepAt < slow.weightsReadyAt,
        `middle step at ${slow.middleStepAt}, weights ready at ${slow.weightsReadyAt}`,
      );
      console.log(
        `middle step of the first pass ${
          (slow.weightsReadyAt - slow.middleStepAt).toFixed(0)
        } ms before the last weight arrived; ${source.requests} requests`,
      );
    } finally {
      await source.close();
    }
  } finally {
    kernels.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The export's members re-packed as a `.tgz` in loading order: `graph.nnef`, the small
 * variables, then the large weights in the order the graph declares them.
 */
async function graphFirstTgz(tgzPath: string): Promise<Uint8Array> {
  const members = new Map((await readMembers(tgzPath)).map((e) => [e.name, e.data]));
  const graph = new TextDecoder().decode(members.get("graph.nnef"));
  const decls = variableDecls(parseDocument(graph, "graph.nnef"));
  const large = (shape: readonly number[] | null): boolean =>
    shape !== null && !readsEagerly(shape);
  const order = [
    "graph.nnef",
    ...decls.filter((d) => !large(d.shape)).map((d) => `${d.label}.dat`),
    ...decls.filter((d) => large(d.shape)).map((d) => `${d.label}.dat`),
  ];
  assert.deepEqual([...order].sort(), [...members.keys()].sort());
  const entries = order.map((name) => ({ name, data: members.get(name)! }));
  return await gzip(writeTar(entries));
}

Deno.test("loadModel lazy: a .tgz with graph.nnef first runs its first pass before the last weight arrived", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    for (const variant of ["f32", "q40"]) {
      const tgzPath = fixture(`nnef/stories260K_${variant}.nnef.tgz`);
      const tgz = await graphFirstTgz(tgzPath);
      // About one second for the whole archive.
      const server = startTestServer({
        "/g.nnef.tgz": tgz,
        "/m.nnef.tgz": await Deno.readFile(tgzPath),
      }, { bytesPerSecond: tgz.length });
      try {
        const local = await greedyLazy(tgzPath, kernels, { lazy: false });
        const slow = await greedyLazy(`${server.url}/g.nnef.tgz`, kernels);
        assert.deepEqual(slow.tokens, local.tokens, `${variant} graph-first tgz`);
        assert.ok(slow.refusedSync, "the synchronous step was refused while loading");
        assert.ok(
          slow.middleStepAt < slow.weightsReadyAt,
          `middle step at ${slow.middleStepAt}, weights ready at ${slow.weightsReadyAt}`,
        );
        // The export's own order (graph.nnef wherever t2n put it) gives the same tokens.
        const own = await greedyLazy(`${server.url}/m.nnef.tgz`, kernels);
        assert.deepEqual(own.tokens, local.tokens, `${variant} tgz in the export's order`);
        console.log(
          `${variant}: middle step of the first pass ${
            (slow.weightsReadyAt - slow.middleStepAt).toFixed(0)
          } ms before the last weight of the graph-first .tgz arrived`,
        );
      } finally {
        await server.close();
      }
    }
  } finally {
    kernels.close();
  }
});
