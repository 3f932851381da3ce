import assert from "node:assert/strict";
import { loadService } from "./load_service.ts";
import { loadKernels } from "../../kernels/mod.ts";

const FIXTURES = new URL("../../../shared/fixtures/", import.meta.url);
const ARCHIVE = new URL("stories260K/nnef/stories260K_f32.nnef.tgz", FIXTURES).pathname;

Deno.test("loadService takes the chat template from the tokenizer's folder, else the plain one", async () => {
  const plain = await loadService(ARCHIVE, {
    modelId: "s",
    tokenizer: new URL("stories260K/tok512.bin", FIXTURES).pathname,
  });
  assert.equal(plain.service.renderChat([{ role: "user", content: "Hi" }]), "user: Hi\nassistant:");
  assert.equal(plain.service.contextLength, 512);
  assert.ok(plain.bytes > 1_000_000);
  assert.equal((await plain.weightsReady).bytes, plain.bytes);
  const smol = await loadService(ARCHIVE, {
    modelId: "s",
    tokenizer: new URL("tokenizers/smollm2", FIXTURES).pathname,
  });
  assert.match(
    smol.service.renderChat([{ role: "user", content: "Hi" }]),
    /^<\|im_start\|>system\n.*<\|im_end\|>\n<\|im_start\|>user\nHi<\|im_end\|>\n<\|im_start\|>assistant\n$/s,
  );
  await smol.weightsReady;
});

Deno.test("loadService without a tokenizer in the archive or given says how to give one", async () => {
  await assert.rejects(
    loadService(ARCHIVE, { modelId: "s" }),
    (e: Error) => e instanceof TypeError && /--tokenizer or TOKENIZER/.test(e.message),
  );
});

Deno.test("loadService with a memory limit plans the KV budget, or refuses a model that does not fit", async () => {
  const tokenizer = new URL("stories260K/tok512.bin", FIXTURES).pathname;
  const limit = { bytes: 2 ** 30, from: "RILL_MEMORY_LIMIT" };
  const loaded = await loadService(ARCHIVE, { modelId: "s", tokenizer, memoryLimit: limit });
  await loaded.weightsReady;
  const plan = loaded.memory!;
  assert.equal(plan.limit, limit);
  assert.equal(plan.weightBytes, loaded.bytes);
  assert.equal(plan.contextLength, 511);
  // f16 keys and values: 5 layers x 2 x 4 kv heads x 8 x 2 bytes.
  assert.equal(plan.kvBytesPerPosition, 640);
  assert.equal(plan.kvBudgetBytes, limit.bytes - plan.fixedBytes - plan.weightBytes);
  assert.equal(plan.sequences, Math.floor(plan.kvBudgetBytes / (640 * 511)));
  const unplanned = await loadService(ARCHIVE, { modelId: "s", tokenizer });
  await unplanned.weightsReady;
  assert.equal(unplanned.memory, undefined);

  await assert.rejects(
    loadService(ARCHIVE, {
      modelId: "s",
      tokenizer,
      memoryLimit: { bytes: 64 * 2 ** 20, from: "/sys/fs/cgroup/memory.max" },
    }),
    (e: Error) =>
      e instanceof RangeError &&
      /^Model 's' does not fit in the 64 MiB memory limit \(\/sys\/fs\/cgroup\/memory\.max\): it needs \d+ MiB, that is 1\.\d MiB of weights \+ 0\.3 MiB of KV cache for one 511-token sequence \(640 bytes per position\) \+ \d+ MiB for the process itself/
        .test(e.message),
  );
});

Deno.test("loadService warms up once the weights are in, and leaves no trace of it", async () => {
  const tokenizer = new URL("stories260K/tok512.bin", FIXTURES).pathname;
  const kernels = await loadKernels({ threads: 1 });
  try {
    const runs: number[][] = [];
    for (const warmUp of [true, false]) {
      const loaded = await loadService(ARCHIVE, { modelId: "s", tokenizer, kernels, warmUp });
      await loaded.weightsReady;
      const before = loaded.service.stats!;
      assert.equal(before.steps, 0);
      assert.equal(before.blocksUsed, 0);
      assert.equal(before.blocksCached, 0);
      const medians = kernels.policy.median(1);
      const prompt = loaded.service.tokenizer.encode("Once upon a time", { addBos: true });
      let ids: readonly number[] = [];
      const options = { sampling: { temperature: 0 }, stop: [], maxTokens: 12 };
      for await (const event of loaded.service.generate(prompt, options)) {
        if (event.type === "done") ids = event.ids;
      }
      runs.push([...ids]);
      if (warmUp) assert.equal(medians, undefined, "the warm-up's steps are not timed");
    }
    assert.equal(runs[0]!.length, 12);
    assert.deepEqual(runs[0], runs[1]);
  } finally {
    kernels.close();
  }
});
