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
  assert.equal(p.current, 2);
  assert.equal(p.next(), 2);
});

Deno.test("ThreadPolicy drops to one thread when two threads make a step slower", () => {
  const p = new ThreadPolicy(2, { probeEvery: 4 });
  drive(p, 12, (t) => (t === 2 ? 10 : 6));
  assert.equal(p.current, 1);
  const used = drive(p, 8, (t) => (t === 2 ? 10 : 6));
  assert.ok(used.filter((t) => t === 1).length >= 6);
});

Deno.test("ThreadPolicy returns to two threads when they pay off again", () => {
  const p = new ThreadPolicy(2, { probeEvery: 4 });
  drive(p, 12, (t) => (t === 2 ? 10 : 6));
  assert.equal(p.current, 1);
  drive(p, 40, (t) => (t === 2 ? 3 : 6));
  assert.equal(p.current, 2);
});

Deno.test("ThreadPolicy keeps the current count within the margin", () => {
  const p = new ThreadPolicy(2, { probeEvery: 2, margin: 0.1 });
  drive(p, 20, (t) => (t === 2 ? 5 : 4.8));
  assert.equal(p.current, 2);
});

Deno.test("ThreadPolicy compares time per unit of work", () => {
  const p = new ThreadPolicy(2, { probeEvery: 2 });
  for (let i = 0; i < 10; i++) {
    const t = p.next();
    p.record(t, t === 2 ? 8 : 6, t === 2 ? 2 : 1);
  }
  assert.equal(p.current, 2);
});

Deno.test("ThreadPolicy with one thread never probes", () => {
  const p = new ThreadPolicy(1, { probeEvery: 1 });
  assert.deepEqual(drive(p, 5, () => 1), [1, 1, 1, 1, 1]);
});

Deno.test("ThreadPolicy rejects a non-positive thread count", () => {
  assert.throws(() => new ThreadPolicy(0), RangeError);
});
