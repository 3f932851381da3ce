import assert from "node:assert/strict";
import { type Kernels, loadKernels } from "../../kernels/mod.ts";
import { buildModel } from "./build_model.ts";
import type { Model } from "./model.ts";
import { loadModel } from "./load_model.ts";
import { Executor, plainExecutor } from "./executor.ts";
import type { FusedCall } from "./steps.ts";
import { inArena } from "../ops/fused.ts";
import { parseDocument } from "../nnef/parse.ts";
import { openArchive } from "../nnef/archive.ts";
import { type Tensor, tensor } from "../tensor/tensor.ts";
import { kernelLinears } from "./kernel_linear.ts";
import { StepReplay } from "./replay.ts";
import { createSession, Session } from "../engine/session.ts";
import { argmax } from "../engine/sampler.ts";

const NNEF = new URL("../../../shared/fixtures/stories260K/nnef/", import.meta.url);

/** Index of the first item where `a` and `b` differ (bit for bit), or -1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  return a.findIndex((x, i) => !Object.is(x, b[i]!));
}

/** A (rows, 32) weight of small varied values. */
function weight(rows: number, step = 7, mod = 13): Tensor {
  const items = Float32Array.from({ length: rows * 32 }, (_, i) => ((i * step) % mod) / mod - 0.5);
  return tensor("f32", [rows, 32], items);
}

/** The model of `graph` (its signature line) over the statements `body`, with `weights`. */
function smallModel(graph: string, body: readonly string[], weights: Record<string, Tensor>) {
  const text = ["version 1.0;", graph, "{", ...body.map((l) => `    ${l}`), "}"].join("\n");
  return buildModel(parseDocument(text), new Map(Object.entries(weights)));
}

/** Runs `body` over `model`'s plain executor, its linears in one-thread kernels, and a replay. */
async function withReplay(
  model: Model,
  body: (run: {
    executor: Executor;
    kernels: Kernels;
    overrides: ReturnType<typeof kernelLinears>;
    replay: StepReplay;
    y: number;
  }) => void | Promise<void>,
): Promise<void> {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const overrides = kernelLinears(model, kernels);
    const executor = plainExecutor(model);
    await body({ executor, kernels, overrides, replay: new StepReplay(), y: model.outputs[0]!.id });
  } finally {
    kernels.close();
  }
}

Deno.test("A replayed run makes the kernel calls again and walks the step TypeScript computes", async () => {
  // h = x W1ᵀ runs in the kernels (x copied in from TS: walked); g = h * h is a TS loop
  // writing into the arena (walked); y = g W2ᵀ reads only the arena (replayed).
  const model = smallModel("graph g(x) -> (y)", [
    "x = external<scalar>(shape = [1, 32]);",
    "w1 = variable<scalar>(shape = [32, 32], label = 'w1');",
    "w2 = variable<scalar>(shape = [8, 32], label = 'w2');",
    "h = linear(x, w1, 0.0);",
    "g = mul(h, h);",
    "y = linear(g, w2, 0.0);",
  ], { w1: weight(32), w2: weight(8, 5, 11) });
  await withReplay(model, ({ executor, kernels, overrides, replay, y }) => {
    for (let run = 0; run < 6; run++) {
      const x = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i + run)); // (1, 32)
      const inputs = new Map<string, Tensor>([["x", tensor("f32", [1, 32], x)]]);
      const bindings = executor.bind(inputs);
      // Replayed first: the arena still holds the last run's values, for another x.
      const replayed = executor.runBound(inputs, bindings, overrides, kernels, replay).get(y)!;
      const walked = executor.runBound(inputs, bindings, overrides, kernels).get(y)!;
      const at = firstDifference(replayed.data as Float32Array, walked.data as Float32Array);
      assert.equal(at, -1, `run ${run}: item ${at} differs`);
    }
    assert.equal(replay.replayedSteps(1), 1, "y alone is replayed");
  });
});

Deno.test("A long replayed stretch is cut, so that a run still pauses for the event loop every 48 steps", async () => {
  const LINEARS = 120;
  const model = smallModel("graph g(x) -> (y)", [
    "x = external<scalar>(shape = [1, 32]);",
    "w = variable<scalar>(shape = [32, 32], label = 'w');",
    "h0 = linear(x, w, 0.0);",
    ...Array.from({ length: LINEARS - 1 }, (_, i) => `h${i + 1} = linear(h${i}, w, 0.0);`),
    `y = mul(h${LINEARS - 1}, 0.5);`,
  ], { w: weight(32) });
  await withReplay(model, async ({ executor, kernels, overrides, replay }) => {
    let pauses = 0;
    const pause = () => (pauses++, null);
    for (let run = 0; run < 4; run++) {
      const x = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i + run)); // (1, 32)
      const inputs = new Map<string, Tensor>([["x", tensor("f32", [1, 32], x)]]);
      pauses = 0;
      await executor.runBoundAsync(
        inputs,
        executor.bind(inputs),
        overrides,
        kernels,
        undefined,
        pause,
        replay,
      );
    }
    const replayed = replay.replayedSteps(1);
    assert.ok(replayed >= LINEARS - 1, `${replayed} steps replayed`);
    // A pause after each step walked, and after each stretch replayed.
    const walked = executor.steps.length - replayed;
    assert.ok(
      pauses >= walked + Math.ceil(replayed / 48),
      `${pauses} pauses over ${walked} steps walked and ${replayed} replayed`,
    );
  });
});

Deno.test("A TS value that two kernel steps read is copied into the arena once, and those steps replay", async () => {
  // c = cos(x) is computed in TS; a = x + c and y = a + c run the kernels' add, as fused
  // calls that declare c a kernel read (as RoPE declares its cos and sin).
  const model = smallModel("graph g(x) -> (y)", [
    "x = external<scalar>(shape = [1, 32]);",
    "w = variable<scalar>(shape = [32, 32], label = 'w');",
    "h = linear(x, w, 0.0);",
    "c = cos(x);",
    "a = add(h, c);",
    "y = add(a, c);",
  ], { w: weight(32) });
  const id = (name: string) => model.values.findIndex((v) => v.name === name);
  const seen: boolean[] = [];
  const kernelAdd = (node: number, inputs: number[]): FusedCall => ({
    node,
    inputs,
    kernelReads: [id("c")],
    eval: ([p, q], ctx) => {
      const k = ctx.kernels!;
      seen.push(ctx.arena!.holds(q!.data as Float32Array));
      const items = [p!.data as Float32Array, q!.data as Float32Array];
      const y = inArena(k, ctx.arena, items, 32, ([po, qo], yo) => k.add(po!, qo!, yo, 32));
      return tensor("f32", [1, 32], y);
    },
  });
  const adds = model.nodes.filter((n) => n.name === "add");
  const fused = new Map(adds.map((n) => {
    const [p, q] = ["x", "y"].map((a) => (n.args.get(a) as { id: number }).id);
    return [n.id, kernelAdd(n.id, [p!, q!])];
  }));
  const executor = new Executor(model, { fused });
  const kernels = await loadKernels({ threads: 1 });
  try {
    const overrides = kernelLinears(model, kernels);
    const replay = new StepReplay();
    const y = model.outputs[0]!.id;
    for (let run = 0; run < 5; run++) {
      const x = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i + run)); // (1, 32)
      const inputs = new Map<string, Tensor>([["x", tensor("f32", [1, 32], x)]]);
      const got = executor.runBound(inputs, executor.bind(inputs), overrides, kernels, replay);
      const want = plainExecutor(model).run(inputs).get("y")!.data as Float32Array; // (1, 32)
      const items = got.get(y)!.data as Float32Array;
      items.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-5, `run ${run}, item ${i}`));
    }
    assert.ok(seen.length > 0 && seen.every((inArena) => inArena), "c read outside the arena");
    // Both adds; the linear and cos read x from TS and are walked.
    assert.equal(replay.replayedSteps(1), 2);
  } finally {
    kernels.close();
  }
});

/** y = (h = x Wᵀ)[:, i:] Wᵀ: a slice whose begin is the small input `i`. */
function sliceModel() {
  return smallModel("graph g(x, i) -> (y)", [
    "x = external<scalar>(shape = [1, 4, 32]);",
    "i = external<integer>(shape = []);",
    "w = variable<scalar>(shape = [32, 32], label = 'w');",
    "h = linear(x, w, 0.0);",
    "l = slice(h, axes = [1], begin = [i], end = [4], stride = [1]);",
    "y = linear(l, w, 0.0);",
  ], { w: weight(32) });
}

/** `sliceModel`'s inputs. */
function sliceInputs(x: Float32Array, i: number): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ["x", tensor("f32", [1, 4, 32], x)], // (1, 4, 32)
    ["i", tensor("i64", [], Float64Array.of(i))],
  ]);
}

Deno.test("A step reading a small value from TS replays while it holds the same items", async () => {
  // l = h[:, i:] is h itself for i = 0 (replayed, reading i by its items); for i = 1 it is a
  // copy, and the replay, finding i changed, walks on.
  const model = sliceModel();
  await withReplay(model, ({ executor, kernels, overrides, replay, y }) => {
    for (const [run, first] of [0, 0, 0, 0, 1, 0].entries()) {
      const inputs = sliceInputs(
        Float32Array.from({ length: 128 }, (_, k) => Math.sin(k + run)),
        first,
      );
      const got = executor.runBound(inputs, executor.bind(inputs), overrides, kernels, replay);
      const want = executor.run(inputs).get("y")!.data as Float32Array; // (1, 4 - i, 32)
      const items = got.get(y)!.data as Float32Array;
      assert.equal(items.length, want.length, `run ${run}`);
      items.forEach((v, k) => assert.ok(Math.abs(v - want[k]!) < 1e-5, `run ${run}, item ${k}`));
      if (run === 3) assert.equal(replay.replayedSteps(1), 2, "the slice and y are replayed");
    }
  });
});

Deno.test("A plan left after it replayed is recorded again, however often: a long-lived session keeps replaying", async () => {
  // Each round: four runs with i = 0 (recorded, then replayed), then one with i = 1, which
  // leaves the plan. Recordings are limited per session; those of a plan that replayed are
  // given back, so that twenty rounds (forty recordings) still end with a plan.
  const model = sliceModel();
  await withReplay(model, ({ executor, kernels, overrides, replay }) => {
    const x = Float32Array.from({ length: 128 }, (_, k) => Math.sin(k));
    const run = (first: number) => {
      const inputs = sliceInputs(x, first);
      executor.runBound(inputs, executor.bind(inputs), overrides, kernels, replay);
    };
    for (let round = 0; round < 20; round++) [0, 0, 0, 0, 1].forEach(run);
    [0, 0, 0].forEach(run);
    assert.equal(replay.replayedSteps(1), 2);
  });
});

/** The logits of `prompt` then of `count` greedy tokens. */
function logitsOf(session: Session, prompt: readonly number[], count: number): Float32Array[] {
  session.reset();
  const out = [session.prefill(prompt)];
  for (let i = 0; i < count; i++) out.push(session.decode(argmax(out.at(-1)!)));
  return out;
}

function assertSameLogits(got: Float32Array[], want: Float32Array[], what: string): void {
  assert.equal(got.length, want.length);
  got.forEach((g, t) => {
    const at = firstDifference(g, want[t]!);
    assert.equal(at, -1, `${what}: token ${t}, logit ${at} differs`);
  });
}

async function sessions(model: Awaited<ReturnType<typeof loadModel>>, kernels: Kernels) {
  const options = { kernels, adaptiveThreads: false, kvItemType: "f32" as const, capacity: 16 };
  return {
    replayed: await createSession(model, options),
    walked: await createSession(model, { ...options, replay: false }),
  };
}

Deno.test("Replayed decode steps give stories260K's logits bit for bit (four exports, one and two threads)", async () => {
  const kernels = await loadKernels({ threads: 2 });
  try {
    for (const variant of ["f32", "q40", "f32_sdpa", "q40_sdpa"]) {
      const model = await loadModel(new URL(`stories260K_${variant}.nnef.tgz`, NNEF).pathname);
      const { replayed, walked } = await sessions(model, kernels);
      for (const threads of [1, 2]) {
        kernels.threads = threads;
        // 40 tokens cross blocks of the cache (16 positions); a second prompt after a reset.
        for (const prompt of [[1, 403, 407, 261, 378], [1, 67, 3]]) {
          const want = logitsOf(walked, prompt, 40);
          const got = logitsOf(replayed, prompt, 40);
          assertSameLogits(got, want, `${variant}, ${threads} threads`);
        }
        assert.ok(replayed.replayedSteps > 0, `${variant}, ${threads} threads: nothing replayed`);
        assert.equal(walked.replayedSteps, 0);
      }
    }
  } finally {
    kernels.close();
  }
});

Deno.test("A cache append replays at every token, its position moved, and stores what the walk does", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const model = await loadModel(new URL("stories260K_q40.nnef.tgz", NNEF).pathname);
    const options = { kernels, adaptiveThreads: false, capacity: 64 };
    const replayed = await createSession(model, options);
    const walked = await createSession(model, { ...options, replay: false });
    // Count the appends that run as usual: a replayed one stores its rows without the pool.
    let writes = 0;
    const pool = replayed.pool!;
    const write = pool.write.bind(pool);
    pool.write = (...args) => (writes++, write(...args));
    const prompt = [1, 403, 407, 261, 378];
    logitsOf(replayed, prompt, 4); // recorded, then replayed
    writes = 0;
    const got = logitsOf(replayed, prompt, 40); // past two blocks of 16 positions
    assert.equal(writes, replayed.pairs.length, "the prompt's appends alone");
    assertSameLogits(got, logitsOf(walked, prompt, 40), "replayed appends");
  } finally {
    kernels.close();
  }
});

Deno.test("Attention replays while its mask is causal, and again once a sliding window drops positions, alone or batched", async () => {
  // stories260K with its mask widened to drop positions more than 20 behind the query: causal
  // for the first 21 positions, then a window of 21, which the paged kernel is told of: the
  // plan recorded with the causal mask must be left when it changes.
  const dir = await Deno.makeTempDir();
  const kernels = await loadKernels({ threads: 1 });
  try {
    const archive = await openArchive(new URL("stories260K_f32.nnef.tgz", NNEF).pathname);
    for (const m of archive.members()) {
      let bytes = await archive.read(m.name);
      if (m.name === "graph.nnef") {
        const text = new TextDecoder().decode(bytes);
        const causal = "    gt0 = gt(unsqueeze0, unsqueeze1);";
        assert.ok(text.includes(causal), "the export's causal mask");
        bytes = new TextEncoder().encode(text.replace(
          causal,
          [
            "    future0 = gt(unsqueeze0, unsqueeze1);",
            "    age0 = sub(unsqueeze1, unsqueeze0);",
            "    gt0 = or(future0, gt(age0, 20));",
          ].join("\n"),
        ));
      }
      await Deno.mkdir(`${dir}/${m.name}`.replace(/\/[^/]*$/, ""), { recursive: true });
      await Deno.writeFile(`${dir}/${m.name}`, bytes);
    }
    await archive.close();
    const model = await loadModel(dir);
    const { replayed, walked } = await sessions(model, kernels);
    const prompt = [1, 403, 407, 261, 378];
    assertSameLogits(logitsOf(replayed, prompt, 40), logitsOf(walked, prompt, 40), "window 20");
    // Three sequences decoding together: each one's mask is checked.
    const three = (replay: boolean) =>
      Promise.all(
        PROMPTS.map(() => createSession(model, { kernels, adaptiveThreads: false, replay })),
      );
    const want = await together(await three(false), 40);
    assertSame(await together(await three(true), 40), want, "window 20, three sequences");
  } finally {
    kernels.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Attention replays past the scores it first had room for", async () => {
  // The scores scratch holds 4 KiB at first: 128 positions of stories260K's 8 heads. The
  // replayed sequence runs first, so that it is the one to outgrow it.
  const kernels = await loadKernels({ threads: 1 });
  try {
    const model = await loadModel(new URL("stories260K_q40.nnef.tgz", NNEF).pathname);
    const options = { kernels, adaptiveThreads: false, capacity: 256 };
    const replayed = await createSession(model, options);
    const walked = await createSession(model, { ...options, replay: false });
    const prompt = [1, 403, 407, 261, 378];
    const got = logitsOf(replayed, prompt, 150);
    assertSameLogits(got, logitsOf(walked, prompt, 150), "past 128 positions");
  } finally {
    kernels.close();
  }
});

Deno.test("A replay that finds the memory laid out otherwise walks on and records again", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const model = await loadModel(new URL("stories260K_q40.nnef.tgz", NNEF).pathname);
    const { replayed, walked } = await sessions(model, kernels);
    const prompt = [1, 403, 407, 261, 378];
    const want = logitsOf(walked, prompt, 8);
    replayed.reset();
    const got = [replayed.prefill(prompt)];
    for (let i = 0; i < 4; i++) got.push(replayed.decode(argmax(got.at(-1)!)));
    assert.ok(replayed.replayedSteps > 0);
    // The kernels' scratch now starts elsewhere than the recording saw.
    const mark = kernels.mark();
    kernels.alloc(64);
    got.push(replayed.decode(argmax(got.at(-1)!)));
    assert.equal(replayed.replayedSteps, 0);
    kernels.reset(mark);
    for (let i = 0; i < 3; i++) got.push(replayed.decode(argmax(got.at(-1)!)));
    assert.ok(replayed.replayedSteps > 0, "no plan after recording again");
    assertSameLogits(got, want, "q40");
  } finally {
    kernels.close();
  }
});

/** Prompts of the sequences stepped together. */
const PROMPTS = [[1, 403, 407, 261, 378], [1, 67, 3], [1, 320, 395, 263, 280, 317, 266]];

/** The logits of `steps` greedy tokens of `sessions` stepped together (the first leaves at `leave`). */
async function together(
  sessions: readonly Session[],
  steps: number,
  leave = Infinity,
): Promise<Float32Array[][]> {
  const out: Float32Array[][] = sessions.map((s, i) => {
    s.reset();
    return [s.prefill(PROMPTS[i]!)];
  });
  for (let t = 0; t < steps; t++) {
    const live = sessions.flatMap((session, i) => (i === 0 && t >= leave ? [] : [{ session, i }]));
    const work = live.map(({ session, i }) => ({ session, ids: [argmax(out[i]!.at(-1)!)] }));
    const logits = await Session.step(work);
    live.forEach(({ i }, k) => out[i]!.push(logits[k]!));
  }
  return out;
}

function assertSame(got: Float32Array[][], want: Float32Array[][], what: string): void {
  assert.equal(got.length, want.length);
  got.forEach((seq, i) => assertSameLogits(seq, want[i]!, `${what}, sequence ${i}`));
}

/** Sessions for each of `PROMPTS`, replaying batched steps and walking them. */
async function batchSessions(variant: string, kernels: Kernels) {
  const model = await loadModel(new URL(`stories260K_${variant}.nnef.tgz`, NNEF).pathname);
  const options = { kernels, adaptiveThreads: false, kvItemType: "f32" as const, capacity: 64 };
  const make = (replay: boolean) =>
    Promise.all(PROMPTS.map(() => createSession(model, { ...options, replay })));
  return { replayed: await make(true), walked: await make(false) };
}

Deno.test("Replayed batched steps give stories260K's logits bit for bit (four exports, one and two threads, a sequence leaving)", async () => {
  const kernels = await loadKernels({ threads: 2 });
  try {
    for (const variant of ["f32", "q40", "f32_sdpa", "q40_sdpa"]) {
      const { replayed, walked } = await batchSessions(variant, kernels);
      for (const threads of [1, 2]) {
        kernels.threads = threads;
        // 20 steps cross blocks of the cache (16 positions); the first sequence leaves after 12.
        const want = await together(walked, 20, 12);
        const got = await together(replayed, 20, 12);
        assertSame(got, want, `${variant}, ${threads} threads`);
        const three = replayed[0]!.replayedBatchSteps([1, 1, 1]);
        const two = replayed[0]!.replayedBatchSteps([1, 1]);
        assert.ok(
          three > 0 && two > 0,
          `${variant}, ${threads} threads: ${three}, ${two} replayed`,
        );
        assert.equal(walked[0]!.replayedBatchSteps([1, 1, 1]), 0);
      }
    }
  } finally {
    kernels.close();
  }
});

Deno.test("Batched decode steps replay their cache appends, each moved, and store what the walk does", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const { replayed, walked } = await batchSessions("q40", kernels);
    // Count the appends that run as usual: a replayed one stores its rows without the pool.
    let writes = 0;
    for (const session of replayed) {
      const pool = session.pool!;
      const write = pool.write.bind(pool);
      pool.write = (...args) => (writes++, write(...args));
    }
    await together(replayed, 4); // recorded, then replayed
    writes = 0;
    // Prompts of 5, 3 and 7 tokens, then 30 steps: each sequence crosses blocks of 16.
    const got = await together(replayed, 30);
    assert.equal(writes, replayed.length * replayed[0]!.pairs.length, "the prompts' appends alone");
    assertSame(got, await together(walked, 30), "replayed batched appends");
  } finally {
    kernels.close();
  }
});

Deno.test("One sequence's prompt chunks of one size, through the batch plan and its replay, give the walk's logits", async () => {
  const kernels = await loadKernels({ threads: 2 });
  try {
    const { replayed, walked } = await batchSessions("q40", kernels);
    const prompt = Array.from({ length: 61 }, (_, i) => 3 + ((i * 53) % 500));
    // A one-sequence step of several tokens runs through the batch plan.
    const chunks = async (session: Session) => {
      session.reset();
      const out = [session.prefill(prompt.slice(0, 1))];
      for (let at = 1; at < prompt.length; at += 4) {
        out.push(...await Session.step([{ session, ids: prompt.slice(at, at + 4) }]));
      }
      return out;
    };
    for (const threads of [1, 2]) {
      kernels.threads = threads;
      assertSameLogits(await chunks(replayed[0]!), await chunks(walked[0]!), `${threads} threads`);
    }
  } finally {
    kernels.close();
  }
});

Deno.test("A batched replay that finds the memory laid out otherwise walks on and records again", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const { replayed, walked } = await batchSessions("q40", kernels);
    const want = await together(walked, 12);
    const out: Float32Array[][] = replayed.map((s, i) => {
      s.reset();
      return [s.prefill(PROMPTS[i]!)];
    });
    const step = async () => {
      const work = replayed.map((session, i) => ({ session, ids: [argmax(out[i]!.at(-1)!)] }));
      (await Session.step(work)).forEach((l, i) => out[i]!.push(l));
    };
    for (let t = 0; t < 4; t++) await step();
    assert.ok(replayed[0]!.replayedBatchSteps([1, 1, 1]) > 0);
    // The kernels' scratch now starts elsewhere than the recording saw.
    const mark = kernels.mark();
    kernels.alloc(64);
    await step();
    assert.equal(replayed[0]!.replayedBatchSteps([1, 1, 1]), 0);
    kernels.reset(mark);
    for (let t = 0; t < 7; t++) await step();
    assert.ok(replayed[0]!.replayedBatchSteps([1, 1, 1]) > 0, "no plan after recording again");
    assertSame(out, want, "q40");
  } finally {
    kernels.close();
  }
});

Deno.test("Prompt chunks of one size beside a decode replay too, bit for bit", async () => {
  const kernels = await loadKernels({ threads: 2 });
  try {
    const { replayed, walked } = await batchSessions("q40", kernels);
    // Sequence 1 reads a 41-token prompt, 4 tokens a step, while sequence 0 decodes.
    const prompt = Array.from({ length: 41 }, (_, i) => 3 + ((i * 37) % 500));
    const run = async (pair: readonly Session[]) => {
      const [a, b] = [pair[0]!, pair[1]!];
      a.reset();
      b.reset();
      const out: Float32Array[][] = [[a.prefill(PROMPTS[0]!)], [b.prefill(prompt.slice(0, 1))]];
      for (let at = 1; at < prompt.length; at += 4) {
        const work = [
          { session: a, ids: [argmax(out[0]!.at(-1)!)] },
          { session: b, ids: prompt.slice(at, at + 4) },
        ];
        (await Session.step(work)).forEach((l, i) => out[i]!.push(l));
      }
      return out;
    };
    for (const threads of [1, 2]) {
      kernels.threads = threads;
      assertSame(await run(replayed), await run(walked), `${threads} threads`);
      assert.ok(
        replayed[0]!.replayedBatchSteps([1, 4]) > 0,
        `${threads} threads: nothing replayed`,
      );
    }
  } finally {
    kernels.close();
  }
});
