import assert from "node:assert/strict";
import { type Kernels, loadKernels } from "../../kernels/mod.ts";
import { loadModel } from "./load_model.ts";
import { createSession, Session } from "../engine/session.ts";
import { argmax } from "../engine/sampler.ts";

const NNEF = new URL("../../../shared/fixtures/stories260K/nnef/", import.meta.url);
const PROMPTS = [[1, 403, 407, 261, 378], [1, 67, 3], [1, 320, 395, 263, 280, 317, 266]];

/** Index of the first item where `a` and `b` differ (bit for bit), or -1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  return a.findIndex((x, i) => !Object.is(x, b[i]!));
}

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
  got.forEach((seq, i) => {
    assert.equal(seq.length, want[i]!.length);
    seq.forEach((g, t) => {
      const at = firstDifference(g, want[i]![t]!);
      assert.equal(at, -1, `${what}: sequence ${i}, token ${t}, logit ${at} differs`);
    });
  });
}

async function sessions(variant: string, kernels: Kernels) {
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
      const { replayed, walked } = await sessions(variant, kernels);
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

Deno.test("A batched replay that finds the memory laid out otherwise walks on and records again", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const { replayed, walked } = await sessions("q40", kernels);
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
    const { replayed, walked } = await sessions("q40", kernels);
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
