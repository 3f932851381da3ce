import assert from "node:assert/strict";
import { loadModel } from "../graph/load_model.ts";
import type { Model } from "../graph/model.ts";
import { cacheLayouts, Session } from "../engine/session.ts";
import { KvPool } from "./kv_pool.ts";
import { argmax } from "../engine/sampler.ts";
import {
  BatchScheduler,
  KvBudgetError,
  type SchedulerOptions,
  type SlotState,
  type StepModel,
} from "./step_loop.ts";
import { QueueFullError } from "./queue.ts";
import { everyRowModel } from "../engine/every_row_model.ts";

const NNEF = new URL("../../../shared/fixtures/stories260K/nnef/", import.meta.url);

const models = new Map<string, Promise<Model>>();
function stories(name: string): Promise<Model> {
  let m = models.get(name);
  if (!m) models.set(name, m = loadModel(new URL(`${name}.nnef.tgz`, NNEF).pathname));
  return m;
}

/**
 * A scheduler over `model` (TS path) with a pool of `blocks` blocks; `before` runs ahead of
 * each step with its work.
 */
function scheduler(
  model: Model,
  blocks: number,
  options: SchedulerOptions = {},
  before?: (work: readonly { readonly ids: readonly number[] }[]) => Promise<void>,
): { scheduler: BatchScheduler<Session>; pool: KvPool; steps: number[] } {
  const pool = new KvPool(cacheLayouts(model), { blocks, kernels: null });
  const steps: number[] = [];
  const step: StepModel<Session> = {
    contextLength: 511,
    pool,
    newSequence: (kind) =>
      kind === "rows"
        ? new Session(everyRowModel(model)!, { pool, everyRow: true })
        : new Session(model, { pool }),
    step: async (work, pause) => {
      await before?.(work);
      steps.push(work.length);
      return Session.step(work.map((w) => ({ session: w.seq, ids: w.ids })), pause);
    },
  };
  return { scheduler: new BatchScheduler(step, options), pool, steps };
}

/**
 * Runs a greedy request of `count` tokens; resolves with the generated ids. `guess`, given
 * the ids so far and how many guesses it may make, guesses the next ones.
 */
async function greedy(
  s: BatchScheduler<Session>,
  prompt: readonly number[],
  count: number,
  signal?: AbortSignal,
  guess?: (ids: readonly number[], most: number) => number[],
): Promise<
  {
    ids: number[];
    cachedTokens: number;
    preemptions: number;
    acceptedGuesses: number;
    rejectedGuesses: number;
  }
> {
  const ids: number[] = [];
  const run = s.submit({
    prompt,
    maxTokens: count,
    next: (logits) => {
      const id = argmax(logits);
      ids.push(id);
      return ids.length >= count ? null : id;
    },
    ...(signal ? { signal } : {}),
    ...(guess ? { draft: (most: number) => guess(ids, most) } : {}),
  });
  const outcome = await run.done;
  return { ids, ...outcome };
}

/** Guesses from `expected` (the tokens to come), each `every`-th of them wrong. */
function guessFrom(expected: readonly number[], every = Infinity) {
  return (ids: readonly number[], most: number) =>
    expected.slice(ids.length, ids.length + most).map((id, i) =>
      (ids.length + i + 1) % every === 0 ? (id + 1) % 512 : id
    );
}

function prompt(length: number, seed: number): number[] {
  return [1, ...Array.from({ length: length - 1 }, (_, i) => 3 + ((i * 37 + seed * 101) % 500))];
}

const PROMPTS = [prompt(5, 1), prompt(23, 2), prompt(2, 3), prompt(40, 4), prompt(17, 5)];

for (const name of ["stories260K_f32", "stories260K_q40"]) {
  Deno.test(`BatchScheduler on ${name}: each sequence's tokens are the same alone or batched, joining mid-way`, async () => {
    const model = await stories(name);
    const alone = [];
    for (const [i, p] of PROMPTS.entries()) {
      alone.push((await greedy(scheduler(model, 64).scheduler, p, 10 + i)).ids);
    }
    const { scheduler: s, steps } = scheduler(model, 64, { tokenBudget: 7 });
    const runs = PROMPTS.map(async (p, i) => {
      // Join at different steps of the others' work.
      for (let k = 0; k < i * 3; k++) await new Promise((r) => setTimeout(r, 0));
      return (await greedy(s, p, 10 + i)).ids;
    });
    const together = await Promise.all(runs);
    assert.deepEqual(together, alone);
    assert.ok(Math.max(...steps) >= 3, `largest batch ${Math.max(...steps)}`);
  });
}

Deno.test("BatchScheduler's slots: each running sequence keeps its place, a finished one's goes to the next", async () => {
  const model = await stories("stories260K_f32");
  const seen: SlotState[][] = [];
  const { scheduler: s } = scheduler(model, 64, { maxRunning: 2, tokenBudget: 8 }, () => {
    seen.push(s.slots.map((slot) => ({ ...slot })));
    return Promise.resolve();
  });
  const lengths = [4, 12, 6];
  await Promise.all(PROMPTS.slice(0, 3).map((p, i) => greedy(s, p, lengths[i]!)));
  assert.deepEqual(s.slots, []);
  const bySequence = new Map<number, SlotState[]>();
  for (const step of seen) {
    assert.ok(step.length >= 1 && step.length <= 2, `${step.length} running`);
    assert.deepEqual(step.map((x) => x.slot), [...step.map((x) => x.slot)].sort());
    for (const x of step) bySequence.set(x.id, [...bySequence.get(x.id) ?? [], x]);
  }
  assert.deepEqual([...bySequence.keys()].sort(), [1, 2, 3]);
  for (const [id, states] of bySequence) {
    const i = id - 1;
    assert.equal(new Set(states.map((x) => x.slot)).size, 1, `sequence ${id} moved`);
    assert.ok(states.every((x) => x.promptTokens === PROMPTS[i]!.length));
    assert.ok(states.every((x) => x.maxTokens === lengths[i]));
    // Positions grow step by step; tokens are sampled once the prompt is in, the last sampled
    // one waiting to be fed.
    const prompt = PROMPTS[i]!.length;
    for (const [k, x] of states.entries()) {
      if (k > 0) assert.ok(x.cachedPositions > states[k - 1]!.cachedPositions);
      if (x.generated > 0) assert.equal(x.cachedPositions, prompt + x.generated - 1);
      else assert.ok(x.cachedPositions < prompt);
    }
    assert.equal(states.at(-1)!.generated, lengths[i]! - 1);
  }
  // The first two start in places 0 and 1; the third takes the first one's when it ends.
  assert.equal(bySequence.get(1)![0]!.slot, 0);
  assert.equal(bySequence.get(2)![0]!.slot, 1);
  assert.equal(bySequence.get(3)![0]!.slot, 0);
});

Deno.test("BatchScheduler reuses a cached prefix: same tokens, cached_tokens counted", async () => {
  const model = await stories("stories260K_f32");
  const base = prompt(45, 7);
  const { scheduler: s } = scheduler(model, 64);
  const first = await greedy(s, base, 6);
  assert.equal(first.cachedTokens, 0);
  const follow = [...base.slice(0, 40), 9, 10, 11];
  const second = await greedy(s, follow, 6);
  // 40 shared tokens hold two full 16-position blocks.
  assert.equal(second.cachedTokens, 32);
  const fresh = await greedy(scheduler(model, 64).scheduler, follow, 6);
  assert.deepEqual(second.ids, fresh.ids);
  assert.equal(s.stats.prefixHitTokens, 32);
});

Deno.test("BatchScheduler shares a prompt's full blocks once they are computed, while their sequence still runs", async () => {
  const model = await stories("stories260K_f32");
  const base = prompt(45, 8);
  const follow = [...base.slice(0, 40), 9, 10, 11];
  const { scheduler: s } = scheduler(model, 64);
  let started!: Promise<{ ids: number[]; cachedTokens: number }>;
  const ids: number[] = [];
  const first = s.submit({
    prompt: base,
    maxTokens: 20,
    next: (logits) => {
      ids.push(argmax(logits));
      // The second request arrives once the first has its first token.
      if (ids.length === 1) started = greedy(s, follow, 6);
      return ids.length >= 20 ? null : ids.at(-1)!;
    },
  });
  await first.done;
  const second = await started;
  assert.equal(second.cachedTokens, 32);
  assert.deepEqual(second.ids, (await greedy(scheduler(model, 64).scheduler, follow, 6)).ids);
  assert.ok(ids.length === 20);
});

Deno.test("BatchScheduler computes a prompt prefix once for sequences that arrive together with it", async () => {
  const model = await stories("stories260K_q40");
  const base = prompt(45, 9);
  const prompts = [base, base, [...base.slice(0, 40), 7, 8], prompt(20, 10)];
  const alone = [];
  for (const p of prompts) alone.push((await greedy(scheduler(model, 64).scheduler, p, 8)).ids);
  const { scheduler: s } = scheduler(model, 64, { tokenBudget: 16 });
  const together = await Promise.all(prompts.map((p) => greedy(s, p, 8)));
  assert.deepEqual(together.map((r) => r.ids), alone);
  // The first computes two full blocks; the next two wait for them; the unrelated one does not.
  assert.deepEqual(together.map((r) => r.cachedTokens), [0, 32, 32, 0]);
});

Deno.test("BatchScheduler pauses the youngest sequence when blocks run out, and it recomputes to the same tokens", async () => {
  const model = await stories("stories260K_q40");
  const alone = [];
  for (const p of PROMPTS.slice(0, 3)) {
    alone.push((await greedy(scheduler(model, 64).scheduler, p, 30)).ids);
  }
  // 8 blocks of 16: the three sequences need 9 at their longest.
  const { scheduler: s, pool } = scheduler(model, 8);
  const results = await Promise.all(PROMPTS.slice(0, 3).map((p) => greedy(s, p, 30)));
  assert.deepEqual(results.map((r) => r.ids), alone);
  assert.ok(s.stats.preemptions > 0, "no sequence was paused");
  assert.equal(pool.freeBlocks + s.prefixCache.size, 8);
});

for (const name of ["stories260K_f32", "stories260K_q40"]) {
  Deno.test(`BatchScheduler on ${name}: guessed tokens change none of a sequence's tokens, right or wrong, alone or batched`, async () => {
    const model = await stories(name);
    const alone: number[][] = [];
    for (const p of PROMPTS) alone.push((await greedy(scheduler(model, 64).scheduler, p, 40)).ids);
    // All right: after the prompt's token, 4 steps of 8 tokens, then 7 (the last never fed).
    const { scheduler: s1, steps: steps1 } = scheduler(model, 64);
    const right = await greedy(s1, PROMPTS[0]!, 40, undefined, guessFrom(alone[0]!));
    assert.deepEqual(right.ids, alone[0]);
    assert.equal(right.acceptedGuesses, 4 * 7 + 6);
    assert.equal(right.rejectedGuesses, 0);
    assert.equal(steps1.length, 1 + 5);
    // Every 5th wrong, sequences with and without guesses joining mid-way, a pool small enough
    // to pause some of them.
    const { scheduler: s, pool } = scheduler(model, 8, { tokenBudget: 9 });
    const runs = PROMPTS.map(async (p, i) => {
      for (let k = 0; k < i * 3; k++) await new Promise((r) => setTimeout(r, 0));
      return greedy(s, p, 40, undefined, i % 2 === 0 ? guessFrom(alone[i]!, 5) : undefined);
    });
    const together = await Promise.all(runs);
    assert.deepEqual(together.map((r) => r.ids), alone);
    for (const [i, r] of together.entries()) {
      if (i % 2 === 1) assert.equal(r.acceptedGuesses + r.rejectedGuesses, 0);
      else assert.ok(r.acceptedGuesses > 10 && r.rejectedGuesses > 5, JSON.stringify(r));
    }
    assert.ok(s.stats.preemptions > 0, "no sequence was paused");
    assert.equal(pool.freeBlocks + s.prefixCache.size, 8);
  });
}

Deno.test("BatchScheduler feeds no guess past the tokens a sequence may make", async () => {
  const model = await stories("stories260K_f32");
  const fed: number[] = [];
  const { scheduler: s } = scheduler(model, 64, {}, (work) => {
    for (const w of work) fed.push(w.ids.length);
    return Promise.resolve();
  });
  const base = (await greedy(scheduler(model, 64).scheduler, PROMPTS[1]!, 12)).ids;
  const guessed = await greedy(s, PROMPTS[1]!, 12, undefined, guessFrom([...base, 7, 7, 7]));
  assert.deepEqual(guessed.ids, base);
  // The prompt, then token 1 and 7 guesses, token 9 and the 2 guesses before the last token.
  assert.deepEqual(fed, [PROMPTS[1]!.length, 8, 3]);
  assert.equal(guessed.acceptedGuesses, 9);
});

/**
 * A greedy request of `count` tokens that also takes its prompt's logits; resolves with the
 * ids, the prompt rows as they came (from, row count) and their logits, one array per row.
 */
async function scored(s: BatchScheduler<Session>, prompt: readonly number[], count: number) {
  const chunks: [number, number][] = [];
  const rows: Float32Array[] = [];
  const ids: number[] = [];
  const run = s.submit({
    prompt,
    maxTokens: count,
    promptLogits: (logits, from, count) => {
      const vocab = logits.length / count;
      chunks.push([from, count]);
      for (let i = 0; i < logits.length; i += vocab) rows.push(logits.slice(i, i + vocab));
    },
    next: (logits) => {
      ids.push(argmax(logits));
      return ids.length >= count ? null : ids.at(-1)!;
    },
  });
  return { ids, chunks, rows, ...await run.done };
}

/** The logits (vocab,) of each position of `prompt` but the last, each from a prefill up to it. */
function eachPrefix(model: Model, prompt: readonly number[]): Float32Array[] {
  return prompt.slice(1).map((_, i) => new Session(model).prefill(prompt.slice(0, i + 1)));
}

Deno.test("BatchScheduler gives a prompt's logits in chunks beside other sequences, its prefix computed, not cached", async () => {
  const model = await stories("stories260K_f32");
  const base = prompt(45, 11);
  const { scheduler: s } = scheduler(model, 64, { tokenBudget: 7 });
  await greedy(s, base, 4); // its full blocks are now cached
  const [rows, other, plain] = await Promise.all([
    scored(s, base, 4),
    greedy(s, prompt(20, 12), 6),
    greedy(s, base, 4),
  ]);
  assert.equal(rows.cachedTokens, 0);
  assert.equal(plain.cachedTokens, 32);
  assert.deepEqual(rows.rows, eachPrefix(model, base));
  // Chunks in order, none twice: from 0 to the prompt's last position.
  let next = 0;
  for (const [from, count] of rows.chunks) {
    assert.equal(from, next);
    next += count;
  }
  assert.equal(next, 44);
  assert.ok(rows.chunks.length > 1, "one chunk only");
  // However large the budget, a step scores at most 64 positions.
  const { scheduler: wide } = scheduler(model, 64, { tokenBudget: 500 });
  const long = await scored(wide, prompt(150, 13), 1);
  assert.deepEqual(long.chunks, [[0, 64], [64, 64], [128, 21]]);
  assert.deepEqual(rows.ids, plain.ids);
  assert.deepEqual(
    other.ids,
    (await greedy(scheduler(model, 64).scheduler, prompt(20, 12), 6)).ids,
  );
});

Deno.test("BatchScheduler gives each prompt row once when its sequence is paused and recomputed", async () => {
  const model = await stories("stories260K_q40");
  // The scored one (23 tokens) comes last: the youngest, paused first.
  const prompts = [PROMPTS[0]!, PROMPTS[2]!, PROMPTS[1]!];
  const alone = [];
  for (const p of prompts) alone.push((await greedy(scheduler(model, 64).scheduler, p, 30)).ids);
  // 8 blocks of 16: the three sequences need 9 at their longest. Without the prefix cache,
  // the paused one recomputes its prompt whole.
  const { scheduler: s } = scheduler(model, 8, { prefixCache: false });
  const [first, second, third] = await Promise.all([
    greedy(s, prompts[0]!, 30),
    greedy(s, prompts[1]!, 30),
    scored(s, prompts[2]!, 30),
  ]);
  assert.deepEqual([first.ids, second.ids, third.ids], alone);
  assert.ok(third.preemptions > 0, "the scored sequence was not paused");
  assert.deepEqual(third.rows, eachPrefix(model, prompts[2]!));
});

Deno.test("BatchScheduler ends a sequence its model cannot make, runs the others, and one that guesses without its guesses", async () => {
  const model = await stories("stories260K_f32");
  const pool = new KvPool(cacheLayouts(model), { blocks: 8, kernels: null });
  const s = new BatchScheduler<Session>({
    contextLength: 511,
    pool,
    newSequence: (kind) => {
      if (kind !== "logits") throw new TypeError(`no ${kind} sequences here`);
      return new Session(model, { pool });
    },
    step: (work, pause) => Session.step(work.map((w) => ({ session: w.seq, ids: w.ids })), pause),
  });
  const refused = s.submit({ prompt: [1, 2, 3], maxTokens: 0, hidden: true, next: () => null });
  const ran = greedy(s, prompt(5, 1), 3);
  // Its guesses need a "rows" sequence: it runs without them.
  const alone = (await greedy(scheduler(model, 64).scheduler, prompt(9, 2), 20)).ids;
  const guessing = greedy(s, prompt(9, 2), 20, undefined, guessFrom(alone));
  await assert.rejects(refused.done, /no hidden sequences here/);
  assert.equal((await ran).ids.length, 3);
  const guessed = await guessing;
  assert.deepEqual(guessed.ids, alone);
  assert.equal(guessed.acceptedGuesses + guessed.rejectedGuesses, 0);
  assert.equal(pool.freeBlocks + s.prefixCache.size, 8);
});

Deno.test("BatchScheduler refuses a hidden sequence that asks for prompt logits", async () => {
  const { scheduler: s } = scheduler(await stories("stories260K_f32"), 4);
  assert.throws(
    () =>
      s.submit({
        prompt: [1, 2],
        maxTokens: 0,
        hidden: true,
        promptLogits: () => {},
        next: () => null,
      }),
    /A hidden sequence gives no prompt logits/,
  );
});

Deno.test("BatchScheduler cancels a sequence mid-prefill and frees its blocks within a step", async () => {
  const model = await stories("stories260K_f32");
  const { scheduler: s, pool } = scheduler(model, 64, { tokenBudget: 4 });
  const controller = new AbortController();
  const long = greedy(s, prompt(60, 9), 5, controller.signal);
  while (s.stats.steps < 3) await new Promise((r) => setTimeout(r, 0));
  controller.abort(new DOMException("Client disconnected", "AbortError"));
  await assert.rejects(long, (e: unknown) => e instanceof DOMException);
  assert.equal(pool.freeBlocks, 64);
  assert.equal(s.stats.running, 0);
  const after = await greedy(s, prompt(5, 1), 3);
  assert.equal(after.ids.length, 3);
});

Deno.test("BatchScheduler refuses what could never fit and what finds the queue full", async () => {
  const model = await stories("stories260K_f32");
  const { scheduler: s } = scheduler(model, 4, { maxWaiting: 1, maxRunning: 1 });
  assert.throws(
    () => s.submit({ prompt: prompt(60, 1), maxTokens: 10, next: () => null }),
    KvBudgetError,
  );
  assert.throws(() => s.submit({ prompt: [], maxTokens: 1, next: () => null }), RangeError);
  const running = greedy(s, prompt(5, 1), 3);
  const waiting = greedy(s, prompt(5, 2), 3);
  assert.throws(() => s.submit({ prompt: [1], maxTokens: 1, next: () => null }), QueueFullError);
  await Promise.all([running, waiting]);
});

Deno.test("BatchScheduler with prefixCache false computes a repeated prompt again", async () => {
  const model = await stories("stories260K_f32");
  const { scheduler: s, pool } = scheduler(model, 64, { prefixCache: false });
  const base = prompt(45, 7);
  await greedy(s, base, 4);
  const again = await greedy(s, base, 4);
  assert.equal(again.cachedTokens, 0);
  assert.equal(s.prefixCache.size, 0);
  assert.equal(pool.freeBlocks, 64);
});

/**
 * A scheduler of 100 ms steps over stories260K whose steps of `tokens` tokens each take
 * `extraMs(tokens)` more; `chunks` gets the size of every prompt chunk they carry.
 */
async function slowedScheduler(
  extraMs: (tokens: number) => number,
): Promise<{ s: BatchScheduler<Session>; chunks: number[] }> {
  const chunks: number[] = [];
  const { scheduler: s } = scheduler(
    await stories("stories260K_f32"),
    64,
    { stepMs: 100 },
    async (work) => {
      const tokens = work.reduce((n, w) => n + w.ids.length, 0);
      await new Promise((r) => setTimeout(r, extraMs(tokens)));
      for (const w of work) if (w.ids.length > 1) chunks.push(w.ids.length);
    },
  );
  return { s, chunks };
}

Deno.test("BatchScheduler sizes prompt chunks by the steps that carry them, not by decode steps", async () => {
  // Every step costs 40 ms more, as if it read every weight: a decode step's cost per token
  // is then 20-40 ms, which would cut a later prompt into chunks of the 16-token minimum.
  const { s, chunks } = await slowedScheduler(() => 40);
  const decoding = greedy(s, prompt(3, 7), 30);
  while (chunks.length === 0) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 200)); // a few decode steps
  chunks.length = 0;
  const long = await greedy(s, prompt(300, 8), 2);
  await decoding;
  assert.ok(long.ids.length === 2);
  assert.ok(Math.max(...chunks) >= 50, `prompt chunks ${chunks.join(", ")}`);
});

Deno.test("BatchScheduler gives a prompt that no sequence decodes beside four times the step", async () => {
  // Every token of a step costs 1 ms more: 100 ms hold about 100 tokens.
  const { s, chunks } = await slowedScheduler((tokens) => tokens);
  await greedy(s, prompt(300, 9), 1);
  assert.deepEqual(chunks, [300]);
  chunks.length = 0;
  const decoding = greedy(s, prompt(3, 7), 40);
  while (chunks.length === 0) await new Promise((r) => setTimeout(r, 5));
  chunks.length = 0;
  await greedy(s, prompt(300, 8), 1);
  await decoding;
  assert.ok(chunks.length >= 2 && Math.max(...chunks) <= 150, `prompt chunks ${chunks.join(", ")}`);
});
