/**
 * Several stories260K sequences stepped together give, bit for bit, the logits each gives
 * alone: with prompts of different lengths, prefills in uneven chunks beside decodes, and
 * sequences joining and leaving mid-way.
 */
import assert from "node:assert/strict";
import { loadModel } from "../src/graph/load_model.ts";
import type { Model } from "../src/graph/model.ts";
import { Session } from "../src/engine/session.ts";
import { argmax } from "../src/engine/sampler.ts";
import { type Kernels, loadKernels } from "../kernels/mod.ts";
import { fixture } from "./_stories260k.ts";

/** A sequence: its prompt, the step it joins at and how many tokens it generates. */
interface Plan {
  readonly prompt: readonly number[];
  readonly joins: number;
  readonly generates: number;
}

const PLANS: readonly Plan[] = [
  { prompt: [1, 403, 407, 261, 378], joins: 0, generates: 12 },
  { prompt: [1, 320, 395, 263, 280, 317, 266, 323, 411, 263], joins: 0, generates: 5 },
  { prompt: [1, 67], joins: 2, generates: 9 },
  {
    prompt: [1, 473, 373, 406, 434, 261, 378, 356, 264, 369, 447, 261, 426, 350],
    joins: 4,
    generates: 6,
  },
];

/** Prefill chunk sizes: a sequence's prompt goes in pieces of these sizes, in turn. */
const CHUNKS = [3, 1, 4];

/** Every logits vector each plan's sequence produces, run alone (greedy). */
async function alone(model: Model, kernels: Kernels | false, plan: Plan): Promise<Float32Array[]> {
  const session = new Session(model, { kernels, adaptiveThreads: false });
  const out: Float32Array[] = [];
  let at = 0;
  for (let c = 0; at < plan.prompt.length; c++) {
    const ids = plan.prompt.slice(at, at + CHUNKS[c % CHUNKS.length]!);
    at += ids.length;
    out.push((await Session.step([{ session, ids }]))[0]!);
  }
  for (let g = 0; g < plan.generates; g++) {
    out.push((await Session.step([{ session, ids: [argmax(out.at(-1)!)] }]))[0]!);
  }
  return out;
}

/** The same sequences stepped together: each step takes one piece of work from every live one. */
async function together(model: Model, kernels: Kernels | false): Promise<Float32Array[][]> {
  const live = PLANS.map(() => ({ session: null as Session | null, at: 0, chunk: 0, done: 0 }));
  const out: Float32Array[][] = PLANS.map(() => []);
  for (let step = 0; out.some((o, i) => o.length < expectedSteps(PLANS[i]!)); step++) {
    const work: { session: Session; ids: number[]; seq: number }[] = [];
    PLANS.forEach((plan, i) => {
      const s = live[i]!;
      if (step < plan.joins || out[i]!.length >= expectedSteps(plan)) return;
      s.session ??= new Session(model, { kernels, adaptiveThreads: false });
      if (s.at < plan.prompt.length) {
        const ids = plan.prompt.slice(s.at, s.at + CHUNKS[s.chunk++ % CHUNKS.length]!);
        s.at += ids.length;
        work.push({ session: s.session, ids, seq: i });
      } else {
        work.push({ session: s.session, ids: [argmax(out[i]!.at(-1)!)], seq: i });
      }
    });
    const logits = await Session.step(work);
    work.forEach((w, k) => out[w.seq]!.push(logits[k]!));
  }
  return out;
}

function expectedSteps(plan: Plan): number {
  let chunks = 0;
  for (let at = 0; at < plan.prompt.length; chunks++) at += CHUNKS[chunks % CHUNKS.length]!;
  return chunks + plan.generates;
}

async function assertSameAsAlone(archive: string, kernels: Kernels | false): Promise<void> {
  const model = await loadModel(fixture(`nnef/${archive}.nnef.tgz`));
  const batched = await together(model, kernels);
  for (let i = 0; i < PLANS.length; i++) {
    const single = await alone(model, kernels, PLANS[i]!);
    assert.equal(batched[i]!.length, single.length);
    single.forEach((logits, s) => {
      assert.deepEqual(batched[i]![s], logits, `sequence ${i}, step ${s}: logits differ`);
    });
  }
}

for (const archive of ["stories260K_f32", "stories260K_q40", "stories260K_f32_sdpa"]) {
  Deno.test(`Session.step of ${archive} sequences together equals each alone (TS path)`, async () => {
    await assertSameAsAlone(archive, false);
  });

  Deno.test(`Session.step of ${archive} sequences together equals each alone (kernels)`, async () => {
    const kernels = await loadKernels({ threads: 2 });
    try {
      await assertSameAsAlone(archive, kernels);
    } finally {
      kernels.close();
    }
  });
}
