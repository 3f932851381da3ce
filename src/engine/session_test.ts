import assert from "node:assert/strict";
import { loadModel } from "../graph/load_model.ts";
import { tensor } from "../tensor/tensor.ts";
import { cacheLayouts, createSession, findCachePairs, Session } from "./session.ts";
import { KvPool } from "../scheduler/kv_pool.ts";
import { argmax } from "./sampler.ts";
import { closeSharedKernels } from "./shared_kernels.ts";
import { countsGraph } from "./_counts_graph.ts";
import { everyRowModel } from "./every_row_model.ts";
import { Executor } from "../graph/executor.ts";
import { fuseGraph } from "../graph/fuse.ts";
import { type Kernels, loadKernels } from "../../kernels/mod.ts";

const ARCHIVE = new URL(
  "../../../shared/fixtures/stories260K/nnef/stories260K_f32.nnef.tgz",
  import.meta.url,
).pathname;
const PROMPT = [1, 403, 407, 261, 378];

/** The path of stories260K's `variant` ("f32", "q40") archive. */
function storiesArchive(variant: string): string {
  return new URL(
    `../../../shared/fixtures/stories260K/nnef/stories260K_${variant}.nnef.tgz`,
    import.meta.url,
  ).pathname;
}

/** Runs `check` on the TS path (kernels false), then in one-thread kernels, named by `mode`. */
async function inEachMode(
  check: (kernels: Kernels | false, mode: string) => void | Promise<void>,
): Promise<void> {
  const kernels = await loadKernels({ threads: 1 });
  try {
    await check(false, "TS");
    await check(kernels, "kernels");
  } finally {
    kernels.close();
  }
}

Deno.test("findCachePairs pairs in_cache_* with the concat producing out_cache_*", async () => {
  const model = await loadModel(ARCHIVE);
  const pairs = findCachePairs(model);
  assert.equal(pairs.length, 10);
  assert.deepEqual(
    pairs.slice(0, 2).map((p) => [p.input, p.output, p.axis]),
    [["in_cache_key_0", "out_cache_key_0", 2], ["in_cache_value_0", "out_cache_value_0", 2]],
  );
});

Deno.test("Session grows its cache and matches a chunked prefill", async () => {
  const model = await loadModel(ARCHIVE);
  const whole = await createSession(model, { capacity: 2, kernels: false });
  const chunked = new Session(model, { capacity: 1 });
  const a = whole.prefill(PROMPT);
  chunked.prefill(PROMPT.slice(0, 2));
  const b = chunked.prefill(PROMPT.slice(2));
  assert.equal(chunked.position, 5);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-4);
  assert.equal(argmax(whole.decode(argmax(a))), argmax(chunked.decode(argmax(b))));
});

Deno.test("Session.fits follows the graph's assertions and a full context is a RangeError", async () => {
  const model = await loadModel(ARCHIVE);
  const session = new Session(model);
  assert.ok(session.fits(511));
  assert.ok(!session.fits(512));
  assert.throws(
    () => session.prefill(new Array<number>(512).fill(1)),
    (e: unknown) =>
      e instanceof RangeError && e.message === "Assertion S+P < 512 failed with P=0, S=512",
  );
  assert.equal(session.position, 0);
});

Deno.test("Session reruns the whole sequence for a graph without a KV cache", () => {
  const session = new Session(
    countsGraph("sum_reduce(tract_core_gather(eye, input_ids, axis = 0), axes = [1])"),
  );
  assert.deepEqual(Array.from(session.prefill([1, 1])), [0, 2, 0]);
  assert.deepEqual(Array.from(session.decode(2)), [0, 2, 1]);
  session.reset();
  assert.deepEqual(Array.from(session.decode(0)), [1, 0, 0]);
  assert.throws(
    () => new Session(session.model, { everyRow: true }),
    /output 'outputs' holds the last position alone, not one row per token/,
  );
});

Deno.test("Session finds caches behind casts (t2n unit export) and matches a full run", async () => {
  const model = await loadModel(
    new URL(
      "../../../shared/fixtures/tract-nnef-cases/sdpa/simple-grouped-query-att-f32/model.nnef.tgz",
      import.meta.url,
    ).pathname,
  );
  assert.deepEqual(findCachePairs(model).map((p) => [p.input, p.output]), [
    ["input_1", "output_1"],
    ["input_2", "output_2"],
  ]);
  const session = new Session(model);
  session.prefill([1, 2, 3]);
  const logits = session.decode(4);
  const empty = tensor("f32", [1, 2, 0, 2]);
  const full = model.run({
    input_0: tensor("i64", [1, 4], Float64Array.of(1, 2, 3, 4)),
    input_1: empty,
    input_2: empty,
  }).get("output_0")!;
  const expected = (full.data as Float32Array).slice(-logits.length);
  for (let i = 0; i < logits.length; i++) assert.ok(Math.abs(logits[i]! - expected[i]!) < 1e-5);
});

Deno.test("createSession runs in the process-wide kernels unless told not to", async () => {
  const model = await loadModel(ARCHIVE);
  try {
    const fast = await createSession(model);
    assert.ok(fast.kernels !== null, "kernels load in Deno");
    assert.equal(fast.kernels, (await createSession(model)).kernels, "loaded once");
    const plain = await createSession(model, { kernels: false });
    assert.equal(plain.kernels, null);
    assert.equal(argmax(fast.prefill(PROMPT)), argmax(plain.prefill(PROMPT)));
  } finally {
    await closeSharedKernels();
  }
});

Deno.test("Session shares its model's compiled graph with every other session over it", async () => {
  const model = await loadModel(ARCHIVE);
  const kernels = await loadKernels({ threads: 1 });
  try {
    const first = new Session(model);
    assert.equal(new Session(model, { capacity: 4 }).executor, first.executor);
    assert.equal(new Session(model, { kernels }).executor, first.executor);
    const plain = new Session(model, { fuse: false });
    assert.notEqual(plain.executor, first.executor);
    assert.equal(new Session(model, { fuse: false }).executor, plain.executor);
    assert.ok(first.executor.stepCount < plain.executor.stepCount);
    assert.notEqual(new Session(await loadModel(ARCHIVE)).executor, first.executor);
  } finally {
    kernels.close();
  }
});

/** The logits of `prompt` and of `count` greedy decode steps after it. */
function* greedyLogits(session: Session, prompt: readonly number[], count: number) {
  let logits = session.prefill(prompt);
  yield logits;
  for (let i = 0; i < count; i++) yield logits = session.decode(argmax(logits));
}

for (const variant of ["f32", "q40"]) {
  Deno.test(`Sessions over one ${variant} model stepped in turn give what each gives alone`, async () => {
    const model = await loadModel(storiesArchive(variant));
    const kernels = await loadKernels({ threads: 1 });
    const prompts = [PROMPT, [1, 378, 261]];
    const steps = 12;
    try {
      const pairs: [Kernels | false, Kernels | false][] = [
        [false, false],
        [kernels, kernels],
        [kernels, false],
      ];
      for (const pair of pairs) {
        // Capacity 4 grows the caches while the other session runs (in the kernels' memory,
        // growth moves every view of it).
        const options = pair.map((k) => ({ kernels: k, capacity: 4, adaptiveThreads: false }));
        // Alone, each with a graph of its own as before sessions shared one.
        const alone = options.map((o, i) => {
          const own = new Executor(model, { fused: fuseGraph(model).calls });
          return [...greedyLogits(new Session(model, o, own), prompts[i]!, steps)];
        });
        const [a, b] = options.map((o, i) =>
          greedyLogits(new Session(model, o), prompts[i]!, steps)
        );
        // A runs its prompt, then B and A take turns: A step, B step, A step, ...
        const turns: Float32Array[][] = [[a!.next().value!], []];
        for (let i = 0; i < steps; i++) {
          turns[1]!.push(b!.next().value!);
          turns[0]!.push(a!.next().value!);
        }
        turns[1]!.push(b!.next().value!);
        const mode = pair.map((k) => (k ? "kernels" : "TS")).join("+");
        for (let i = 0; i < 2; i++) {
          assert.deepEqual(turns[i]!.map(argmax), alone[i]!.map(argmax), `${mode}: tokens of ${i}`);
          assert.deepEqual(turns[i], alone[i], `${mode}: logits of session ${i}`);
        }
      }
    } finally {
      kernels.close();
    }
  });
}

for (const variant of ["f32", "q40"]) {
  Deno.test(`An everyRow ${variant} session gives each position's logits, each what the prompt up to it gives`, async () => {
    const model = await loadModel(storiesArchive(variant));
    await inEachMode(async (k, mode) => {
      const options = { kernels: k, adaptiveThreads: false };
      const vocab = new Session(model, options).prefill(PROMPT).length;
      const expected = PROMPT.map((_, i) =>
        new Session(model, options).prefill(PROMPT.slice(0, i + 1))
      );
      const rows = (logits: Float32Array, count: number) =>
        Array.from({ length: count }, (_, i) => logits.slice(i * vocab, (i + 1) * vocab));
      const rowsModel = everyRowModel(model)!;
      const alone = new Session(rowsModel, { ...options, everyRow: true });
      const first = alone.prefill(PROMPT.slice(0, 2)); // (2, vocab)
      const rest = alone.prefill(PROMPT.slice(2)); // (3, vocab)
      assert.deepEqual([...rows(first, 2), ...rows(rest, 3)], expected, `${mode}: alone`);
      assert.equal(alone.decode(5).length, vocab, `${mode}: one token, one row`);
      // Stepped together, each gets its own rows.
      const [a, b] = [0, 1].map(() => new Session(rowsModel, { ...options, everyRow: true }));
      const [la, lb] = await Session.step([
        { session: a!, ids: PROMPT },
        { session: b!, ids: PROMPT.slice(0, 3) },
      ]);
      assert.deepEqual(rows(la!, 5), expected, `${mode}: first of a batch`);
      assert.deepEqual(rows(lb!, 3), expected.slice(0, 3), `${mode}: second of a batch`);
    });
  });
}

for (const variant of ["f32", "q40"]) {
  Deno.test(`A ${variant} session that forgets positions, or hands them to an everyRow one mid-block, goes on as if they were never fed`, async () => {
    const model = await loadModel(storiesArchive(variant));
    await inEachMode((k, mode) => {
      const pool = new KvPool(cacheLayouts(model), { blocks: 8, kernels: k || null });
      const options = { kernels: k, adaptiveThreads: false, pool };
      const alone = (ids: number[]) => {
        const session = new Session(model, options);
        const logits = session.prefill(ids);
        session.reset();
        return logits;
      };
      const expected = alone([...PROMPT, 7, 9]);
      // 5 + 16 wrong tokens across a block's end, forgotten, then the right ones.
      const s = new Session(model, options);
      s.prefill([...PROMPT, ...Array.from({ length: 16 }, (_, i) => 20 + i)]);
      s.truncate(PROMPT.length);
      assert.deepEqual(s.prefill([7, 9]), expected, `${mode}: truncated`);
      assert.throws(() => s.truncate(8), RangeError);
      // The 7 positions (one block, partly full) move to an everyRow session.
      const rows = new Session(everyRowModel(model)!, { ...options, everyRow: true });
      rows.adopt(s.blocks, s.position);
      s.reset();
      const vocab = expected.length;
      const next = alone([...PROMPT, 7, 9, 11]);
      assert.deepEqual(rows.prefill([11, 13]).slice(0, vocab), next, `${mode}: adopted`);
      rows.reset();
      assert.equal(pool.freeBlocks, 8);
    });
  });
}

Deno.test("Sessions of other graphs or everyRow step in turn, each as alone", async () => {
  const model = await loadModel(ARCHIVE);
  const rows = everyRowModel(model)!;
  const sessions = [
    new Session(model),
    new Session(rows, { everyRow: true }),
    new Session(model),
    new Session(rows),
  ];
  const prompts = [PROMPT, PROMPT.slice(0, 3), PROMPT.slice(1), PROMPT.slice(2)];
  const alone = sessions.map((s, i) =>
    new Session(s.model, { everyRow: s.everyRow }).prefill(prompts[i]!)
  );
  const together = await Session.step(
    sessions.map((session, i) => ({ session, ids: prompts[i]! })),
  );
  assert.deepEqual(together, alone);
  assert.deepEqual(together.map((l) => l.length), [512, 3 * 512, 512, 512]);
});

for (const variant of ["f32", "q40"]) {
  Deno.test(`A ${variant} step keeps activations in the kernels' memory: same logits as copying them, returned as copies`, async () => {
    const model = await loadModel(storiesArchive(variant));
    const kernels = await loadKernels({ threads: 1 });
    const options = { kernels, capacity: 4, adaptiveThreads: false };
    try {
      const arena = kernels.openRun();
      assert.ok(arena, "the kernels have a run arena");
      arena.close();
      const kept = [...greedyLogits(new Session(model, options), PROMPT, 8)];
      assert.ok(arena.asked > 0, "the ops left their results in it");
      // While another run holds the run arena, every result is copied out of the kernels.
      const held = kernels.openRun();
      assert.ok(held);
      const copied = [...greedyLogits(new Session(model, options), PROMPT, 8)];
      held.close();
      assert.deepEqual(kept, copied);
      for (const l of kept) {
        assert.ok(!(l.buffer instanceof SharedArrayBuffer), "logits are copies");
      }

      // A step paused mid-run holds the arena until it ends; then the next run gets it.
      const a = new Session(model, options);
      const b = new Session(model, options);
      let free: boolean | null = null;
      const step = Session.step(
        [{ session: a, ids: PROMPT }, { session: b, ids: [1, 378] }],
        () => {
          free ??= kernels.openRun() !== null;
          return null;
        },
      );
      const [la] = await step;
      assert.equal(free, false, "held by the paused run");
      assert.deepEqual(la, kept[0]);
      assert.equal(kernels.openRun(), arena, "released at the end of the run");
      arena.close();
    } finally {
      kernels.close();
    }
  });
}

for (const variant of ["f32", "q40"]) {
  Deno.test(`A ${variant} run that fills its run arena reuses what its dead values held: same logits as copying`, async () => {
    const model = await loadModel(storiesArchive(variant));
    const kernels = await loadKernels({ threads: 1, runArenaBytes: 12 * 1024 });
    const options = { kernels, adaptiveThreads: false };
    const long = Array.from({ length: 48 }, (_, i) => 1 + (i * 37) % 500);
    const short = long.slice(0, 20);
    try {
      const arena = kernels.openRun();
      assert.ok(arena);
      arena.close();
      const kept = [...greedyLogits(new Session(model, options), long, 4)];
      const a = new Session(model, options);
      const b = new Session(model, options);
      const batched = await Session.step([{ session: a, ids: long }, { session: b, ids: short }]);
      assert.ok(arena.collections > 0, "the batched prompt step filled the arena and collected");

      const held = kernels.openRun();
      assert.ok(held);
      const copied = [...greedyLogits(new Session(model, options), long, 4)];
      const alone = greedyLogits(new Session(model, options), short, 0).next().value!;
      held.close();
      assert.deepEqual(kept, copied);
      assert.deepEqual(batched, [copied[0], alone]);
    } finally {
      kernels.close();
    }
  });
}
