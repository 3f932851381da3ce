import assert from "node:assert/strict";
import { ThreadPolicy } from "./thread_policy.ts";

function drive(policy: ThreadPolicy, steps: number, msFor: (threads: number) => number): number[] {
  const used: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = policy.next();
    used.push(t);
    policy.record(t, msFor(t));
  }
  return used;
}

Deno.test("ThreadPolicy starts at the maximum thread count", () => {
  const p = new ThreadPolicy(2);
  assert.equal(p.current(), 2);
  assert.equal(p.next(), 2);
});

Deno.test("ThreadPolicy probes fewer threads for one step, more threads for two", () => {
  const p = new ThreadPolicy(2, { probeEvery: 4 });
  assert.deepEqual(drive(p, 10, () => 5), [2, 2, 2, 1, 2, 2, 2, 1, 2, 2]);
  // At one thread, the probe's first two-thread step wakes the worker and is not timed.
  const q = new ThreadPolicy(2, { probeEvery: 4 });
  assert.deepEqual(drive(q, 18, (t) => (t === 2 ? 10 : 6)), [
    2,
    2,
    2,
    1,
    2,
    2,
    2,
    1,
    2,
    2,
    2,
    1,
    1,
    1,
    1,
    2,
    2,
    1,
  ]);
});

Deno.test("ThreadPolicy drops to one thread when two threads make a step slower", () => {
  const p = new ThreadPolicy(2, { probeEvery: 5 });
  drive(p, 16, (t) => (t === 2 ? 10 : 6));
  assert.equal(p.current(), 1);
  const used = drive(p, 8, (t) => (t === 2 ? 10 : 6));
  assert.ok(used.filter((t) => t === 1).length >= 6);
});

Deno.test("ThreadPolicy returns to two threads when they pay off again", () => {
  const p = new ThreadPolicy(2, { probeEvery: 5 });
  drive(p, 16, (t) => (t === 2 ? 10 : 6));
  assert.equal(p.current(), 1);
  drive(p, 60, (t) => (t === 2 ? 3 : 6));
  assert.equal(p.current(), 2);
});

Deno.test("ThreadPolicy keeps the current count within the margin", () => {
  const p = new ThreadPolicy(2, { probeEvery: 4, margin: 0.1 });
  drive(p, 40, (t) => (t === 2 ? 5 : 4.8));
  assert.equal(p.current(), 2);
});

Deno.test("ThreadPolicy compares time per unit of work", () => {
  const p = new ThreadPolicy(2, { probeEvery: 4 });
  for (let i = 0; i < 40; i++) {
    const t = p.next(4);
    p.record(t, t === 2 ? 16 : 24, 4);
  }
  assert.equal(p.current(4), 2);
  assert.equal(p.median(2, 4), 4);
  assert.equal(p.median(1, 4), 6);
});

Deno.test("ThreadPolicy compares a prompt's steps with prompt steps, a decode step with decode steps", () => {
  const p = new ThreadPolicy(2, { probeEvery: 16 });
  // Per token, a 128-token prompt step (2.6 ms at one thread, 1.5 at two) beats any decode
  // step (5.9 and 4.5): timed in one window, prompts that fell on a probe's timed step sent
  // everything to one thread.
  const used = { prompt: [] as number[], decode: [] as number[] };
  for (let i = 1; i <= 320; i++) {
    const work = i % 16 === 1 ? 128 : 1;
    const t = p.next(work);
    const perToken = work > 1 ? (t === 2 ? 1.5 : 2.6) : (t === 2 ? 4.5 : 5.9);
    p.record(t, perToken * work, work);
    used[work > 1 ? "prompt" : "decode"].push(t);
  }
  assert.equal(p.current(), 2);
  assert.equal(p.current(128), 2);
  // One thread only in probes: the prompt steps' own (their 16th), the decode steps'.
  assert.deepEqual(used.prompt.flatMap((t, i) => t === 1 ? [i + 1] : []), [16]);
  assert.ok(used.decode.filter((t) => t === 1).length <= Math.ceil(300 / 16));
});

Deno.test("ThreadPolicy keeps two threads whose steps are typically faster, slow ones now and then", () => {
  const p = new ThreadPolicy(2, { probeEvery: 8 });
  let twos = 0;
  // Every fifth two-thread step waits on a descheduled worker: the mean (5.6 ms) is within
  // the margin of one thread's 6 ms, the median (4.5 ms) is not.
  const used = drive(p, 200, (t) => (t === 1 ? 6 : ++twos % 5 === 0 ? 10 : 4.5));
  assert.equal(p.current(), 2);
  // One thread in the probes only: steps 8, 16 and 24, then 16, 32 and 64 steps apart as
  // they keep losing.
  assert.deepEqual(used.flatMap((t, i) => t === 1 ? [i + 1] : []), [8, 16, 24, 40, 72, 136]);
  assert.equal(p.median(2), 4.5);
});

Deno.test("ThreadPolicy probes less often while probes lose, and soon when its count slows", () => {
  const p = new ThreadPolicy(2);
  // Probes at steps 16, 32 and 48 until one thread has three times, then 32, 64, ... and at
  // most 512 steps apart: 9 probes in 2000 steps where a fixed period made 125.
  const used = drive(p, 2000, (t) => (t === 2 ? 4.5 : 6));
  assert.equal(p.current(), 2);
  assert.equal(used.filter((t) => t === 1).length, 9);
  // A neighbour takes a core: two-thread steps slow down, and within a few steps (the
  // median of the last nine must move) a probe finds one thread faster.
  const after = drive(p, 12, (t) => (t === 2 ? 10 : 6));
  assert.equal(p.current(), 1);
  assert.deepEqual(after.slice(-3), [1, 1, 1]);
});

Deno.test("ThreadPolicy does not time a step that adds threads", () => {
  const p = new ThreadPolicy(2, { probeEvery: 4 });
  // Two threads after one-thread steps wait for a sleeping worker: 20 ms, then 4.5 ms again.
  let last = 0;
  drive(p, 100, (t) => {
    const ms = t === 1 ? 6 : last === 1 ? 20 : 4.5;
    last = t;
    return ms;
  });
  assert.equal(p.current(), 2);
  assert.equal(p.median(2), 4.5);
  assert.equal(p.median(1), 6);
});

Deno.test("ThreadPolicy compares a count only once it has been timed a few times", () => {
  const p = new ThreadPolicy(2, { probeEvery: 4 });
  // Probes at steps 4, 8 and 12: one thread's third time comes with the third.
  drive(p, 11, (t) => (t === 2 ? 10 : 1));
  assert.equal(p.current(), 2);
  drive(p, 1, (t) => (t === 2 ? 10 : 1));
  assert.equal(p.current(), 1);
});

Deno.test("ThreadPolicy with one thread never probes", () => {
  const p = new ThreadPolicy(1, { probeEvery: 1 });
  assert.deepEqual(drive(p, 5, () => 1), [1, 1, 1, 1, 1]);
});

Deno.test("ThreadPolicy rejects a non-positive thread count", () => {
  assert.throws(() => new ThreadPolicy(0), RangeError);
});
