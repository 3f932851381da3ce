import assert from "node:assert/strict";
import { argmax, Sampler, tokenLogprob } from "./sampler.ts";

const LOGITS = new Float32Array([0.1, 2.5, 2.4, -1, 0.3]);

Deno.test("Sampler at temperature 0 picks the argmax", () => {
  assert.equal(new Sampler({ temperature: 0 }).sample(LOGITS), 1);
  assert.equal(argmax(new Float32Array([3, 3, 1])), 0);
});

Deno.test("Sampler with the same seed draws the same tokens", () => {
  const draw = (seed: number) => {
    const s = new Sampler({ temperature: 1, seed });
    return Array.from({ length: 32 }, () => s.sample(LOGITS));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

Deno.test("Sampler top_k 1 is greedy and top_p keeps the nucleus", () => {
  const greedy = new Sampler({ temperature: 1, topK: 1, seed: 3 });
  for (let i = 0; i < 16; i++) assert.equal(greedy.sample(LOGITS), 1);
  const nucleus = new Sampler({ temperature: 1, topP: 0.5, seed: 3 });
  for (let i = 0; i < 32; i++) assert.ok([1, 2].includes(nucleus.sample(LOGITS)));
});

Deno.test("Sampler min_p drops unlikely tokens", () => {
  const s = new Sampler({ temperature: 1, minP: 0.5, seed: 11 });
  for (let i = 0; i < 32; i++) assert.ok([1, 2].includes(s.sample(LOGITS)));
});

Deno.test("Sampler penalties and logit bias move the argmax", () => {
  assert.equal(new Sampler({ temperature: 0, frequencyPenalty: 1 }).sample(LOGITS, [1]), 2);
  assert.equal(new Sampler({ temperature: 0, repetitionPenalty: 2 }).sample(LOGITS, [1]), 2);
  assert.equal(new Sampler({ temperature: 0, logitBias: new Map([[4, 10]]) }).sample(LOGITS), 4);
  assert.deepEqual(Array.from(LOGITS), Array.from(new Float32Array([0.1, 2.5, 2.4, -1, 0.3])));
});

/** The tokens top-k, then top-p (renormalized), then min-p keep, by sorting: the definition. */
function keptBySorting(
  logits: Float32Array,
  temperature: number,
  topK: number,
  topP: number,
  minP: number,
): number[] {
  const max = Math.max(...logits);
  const w = Array.from(logits, (x) => Math.exp((x - max) / temperature));
  let ids = w.map((_, i) => i).sort((a, b) => w[b]! - w[a]! || a - b);
  if (topK > 0) ids = ids.slice(0, topK);
  const mass = ids.reduce((m, id) => m + w[id]!, 0);
  let acc = 0;
  const nucleus = [];
  for (const id of ids) {
    nucleus.push(id);
    acc += w[id]!;
    if (acc >= topP * mass) break;
  }
  return nucleus.filter((id) => w[id]! >= minP).sort((a, b) => a - b);
}

Deno.test("Sampler keeps exactly the tokens the sorted definition of top-k, top-p and min-p keeps", () => {
  let seed = 5;
  const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const cases = [
    { topK: 0, topP: 0.6, minP: 0 },
    { topK: 7, topP: 1, minP: 0 },
    { topK: 12, topP: 0.8, minP: 0 },
    { topK: 0, topP: 0.9, minP: 0.2 },
    { topK: 20, topP: 0.95, minP: 0.05 },
  ];
  for (const options of cases) {
    for (let trial = 0; trial < 4; trial++) {
      // Rounded logits make ties, which the definition breaks by id.
      const logits = Float32Array.from({ length: 40 }, () => Math.round(random() * 12) / 4);
      const expected = keptBySorting(logits, 1.5, options.topK, options.topP, options.minP);
      const sampler = new Sampler({ temperature: 1.5, seed: trial, ...options });
      const seen = new Set<number>();
      for (let i = 0; i < 3000; i++) seen.add(sampler.sample(logits));
      assert.deepEqual([...seen].sort((a, b) => a - b), expected, JSON.stringify(options));
    }
  }
});

Deno.test("Sampler top-k keeps the sorted definition's tokens over a large vocabulary, small k and large", () => {
  let seed = 11;
  const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  // Rounded logits tie in runs; some are masked.
  const logits = Float32Array.from({ length: 3000 }, () => Math.round(random() * 40) / 8);
  for (let i = 0; i < logits.length; i += 37) logits[i] = -Infinity;
  for (const topK of [50, 1500]) {
    const expected = keptBySorting(logits, 100, topK, 1, 0);
    const sampler = new Sampler({ temperature: 100, topK, seed: 2 });
    const seen = new Set<number>();
    for (let i = 0; i < 30 * topK; i++) seen.add(sampler.sample(logits));
    assert.deepEqual([...seen].sort((a, b) => a - b), expected, `top_k ${topK}`);
  }
  // More than the tokens that can be drawn: all of those.
  const few = Float32Array.of(1, -Infinity, 3, NaN, 2);
  const all = new Set<number>();
  const sampler = new Sampler({ temperature: 100, topK: 4, seed: 2 });
  for (let i = 0; i < 300; i++) all.add(sampler.sample(few));
  assert.deepEqual([...all].sort(), [0, 2, 4]);
});

Deno.test("Sampler breaks ties in top-k and top-p by the lower id", () => {
  const flat = new Float32Array(10).fill(1);
  const topK = new Sampler({ topK: 3, seed: 1 });
  const topP = new Sampler({ topP: 0.5, seed: 1 });
  const k = new Set<number>();
  const p = new Set<number>();
  for (let i = 0; i < 500; i++) {
    k.add(topK.sample(flat));
    p.add(topP.sample(flat));
  }
  assert.deepEqual([...k].sort(), [0, 1, 2]);
  assert.deepEqual([...p].sort(), [0, 1, 2, 3, 4]);
});

Deno.test("Sampler draws in proportion to the probabilities", () => {
  const logits = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
  const s = new Sampler({ seed: 42 });
  const counts = [0, 0, 0];
  for (let i = 0; i < 20000; i++) counts[s.sample(logits)]!++;
  assert.deepEqual(counts.map((c) => Math.round(c / 2000)), [5, 3, 2]);
});

Deno.test("Sampler draws the tokens top-p, min-p and XTC keep in proportion to their weights", () => {
  const logits = new Float32Array([0.5, 0.3, 0.15, 0.05].map(Math.log));
  const options = [{ topP: 0.75 }, { minP: 0.4 }, { topK: 3, topP: 0.7 }, { topP: 0.9, minP: 0.4 }];
  for (const o of options) {
    const s = new Sampler({ temperature: 1, seed: 9, ...o });
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[s.sample(logits)]!++;
    // Tokens 0 and 1 are kept: 0.5 and 0.3 of the whole, 0.625 and 0.375 of what is kept.
    assert.deepEqual(counts.slice(2), [0, 0], JSON.stringify(o));
    assert.ok(Math.abs(counts[0]! / 20000 - 0.625) < 0.015, `${JSON.stringify(o)}: ${counts}`);
  }
  // XTC at certainty drops every token above its threshold but the least likely of them.
  const xtc = new Sampler({ temperature: 1, seed: 9, xtcProbability: 1, xtcThreshold: 0.1 });
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 20000; i++) counts[xtc.sample(logits)]!++;
  assert.equal(counts[0]! + counts[1]!, 0);
  assert.ok(Math.abs(counts[2]! / 20000 - 0.75) < 0.015, `xtc: ${counts}`);
});

Deno.test("tokenLogprob is the log-softmax of the raw logits, with the most likely first", () => {
  const logits = new Float32Array([0.1, 2.5, 2.4, -1, 0.3, 2.5]);
  const z = Math.log(Array.from(logits).reduce((s, x) => s + Math.exp(x), 0));
  const { id, logprob, top } = tokenLogprob(logits, 2, 3);
  assert.equal(id, 2);
  assert.ok(Math.abs(logprob - (logits[2]! - z)) < 1e-6);
  assert.deepEqual(top.map((t) => t.id), [1, 5, 2]);
  for (const t of top) assert.ok(Math.abs(t.logprob - (logits[t.id]! - z)) < 1e-6);
  assert.deepEqual(tokenLogprob(logits, 0, 0).top, []);
  assert.equal(tokenLogprob(logits, 0, 20).top.length, 6);
});

Deno.test("Sampler draws only tokens the mask allows", () => {
  const allowed = Uint8Array.of(1, 0, 0, 1, 0);
  assert.equal(new Sampler({ temperature: 0 }).sample(LOGITS, [], allowed), 0);
  for (const options of [{}, { topK: 3 }, { topP: 0.9 }, { minP: 0.01 }]) {
    const s = new Sampler({ temperature: 2, seed: 5, ...options });
    const seen = new Set(Array.from({ length: 200 }, () => s.sample(LOGITS, [], allowed)));
    assert.deepEqual([...seen].sort(), [0, 3], JSON.stringify(options));
  }
  const one = Uint8Array.of(0, 0, 0, 1, 0);
  assert.equal(new Sampler({ temperature: 1, topP: 0.1, seed: 1 }).sample(LOGITS, [], one), 3);
});

/** The tokens drawn in `n` draws of `sampler` from `logits`. */
function drawn(sampler: Sampler, logits: Float32Array, n = 400): Set<number> {
  return new Set(Array.from({ length: n }, () => sampler.sample(logits)));
}

Deno.test("Sampler top_n_sigma keeps the logits within n standard deviations of the largest", () => {
  // Mean 2, standard deviation 3.74 (the root of 84 / 6): within one of 7, 4 and up stay.
  const logits = new Float32Array([7, 5, 4, 1, -1, -4]);
  assert.deepEqual(
    [...drawn(new Sampler({ temperature: 100, topNSigma: 1, seed: 5 }), logits)].sort(),
    [0, 1, 2],
  );
  // Two sigmas reach down to 1; off, every token is drawn at a high temperature.
  assert.deepEqual(
    [...drawn(new Sampler({ temperature: 100, topNSigma: 2, seed: 5 }), logits)].sort(),
    [0, 1, 2, 3],
  );
  assert.equal(drawn(new Sampler({ temperature: 100, topNSigma: -1, seed: 5 }), logits).size, 6);
  assert.deepEqual(Array.from(logits), [7, 5, 4, 1, -1, -4]);
});

Deno.test("Sampler XTC drops the top choices but the least likely of those over the threshold", () => {
  // Probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1.
  const logits = new Float32Array([0.5, 0.3, 0.15, 0.05].map(Math.log));
  const always = { temperature: 1, xtcProbability: 1, seed: 9 };
  assert.deepEqual([...drawn(new Sampler({ ...always, xtcThreshold: 0.1 }), logits)].sort(), [
    2,
    3,
  ]);
  assert.deepEqual([...drawn(new Sampler({ ...always, xtcThreshold: 0.25 }), logits)].sort(), [
    1,
    2,
    3,
  ]);
  // One token over the threshold, or a threshold above 0.5: nothing is cut.
  assert.equal(drawn(new Sampler({ ...always, xtcThreshold: 0.4 }), logits).size, 4);
  assert.equal(drawn(new Sampler({ ...always, xtcThreshold: 0.6 }), logits).size, 4);
  // Half of the time: the top choice, half of the draws without XTC, comes a quarter of them.
  let top = 0;
  for (let seed = 0; seed < 2000; seed++) {
    const s = new Sampler({ temperature: 1, xtcProbability: 0.5, xtcThreshold: 0.1, seed });
    if (s.sample(logits) === 0) top++;
  }
  assert.ok(top > 400 && top < 600, `${top} of 2000 drew the top choice`);
  // Its draw is part of the seeded stream.
  const stream = (seed: number) => {
    const s = new Sampler({ temperature: 1, xtcProbability: 0.5, xtcThreshold: 0.1, seed });
    return Array.from({ length: 32 }, () => s.sample(logits));
  };
  assert.deepEqual(stream(4), stream(4));
  // After top-k: the candidates are top-k's.
  const topK = new Sampler({ ...always, xtcThreshold: 0.1, topK: 2 });
  assert.deepEqual([...drawn(topK, logits)], [1]);
});

Deno.test("Sampler DRY reads the prompt and the tokens generated, and moves the argmax off a repeat", () => {
  const dry = {
    multiplier: 5,
    base: 1.75,
    allowedLength: 2,
    lastN: Infinity,
    sequenceBreakers: [],
  };
  // Token 1 is the most likely; after 3 4 ... 3 4, which went on with 1, it loses 5.
  const sampler = new Sampler({ temperature: 0, dry }, { prompt: [3, 4, 1, 0] });
  assert.equal(sampler.sample(LOGITS, [3]), 1);
  assert.equal(sampler.sample(LOGITS, [3, 4]), 2);
  // Without the prompt there is no repeat; with token 4 a breaker, none either.
  assert.equal(new Sampler({ temperature: 0, dry }).sample(LOGITS, [3, 4]), 1);
  const broken = new Sampler({ temperature: 0, dry }, {
    prompt: [3, 4, 1, 0],
    breakers: new Set([4]),
  });
  assert.equal(broken.sample(LOGITS, [3, 4]), 1);
  assert.deepEqual(Array.from(LOGITS), Array.from(new Float32Array([0.1, 2.5, 2.4, -1, 0.3])));
});

Deno.test("Sampler typical_p keeps the tokens whose surprise is nearest the entropy", () => {
  // Probabilities 0.5, 0.3, 0.15, 0.05: entropy 1.14 nats; surprises 0.69, 1.20, 1.90, 3.00.
  const logits = new Float32Array([0.5, 0.3, 0.15, 0.05].map(Math.log));
  const kept = (typicalP: number) =>
    [...drawn(new Sampler({ temperature: 1, typicalP, seed: 2 }), logits)].sort();
  assert.deepEqual(kept(0.25), [1]);
  assert.deepEqual(kept(0.5), [0, 1]);
  assert.deepEqual(kept(0.9), [0, 1, 2]);
  assert.deepEqual(kept(1), [0, 1, 2, 3]);
  // After top-k 3, among those three (renormalized).
  assert.deepEqual(
    [...drawn(new Sampler({ temperature: 1, typicalP: 0.3, topK: 3, seed: 2 }), logits)],
    [1],
  );
});

Deno.test("Sampler Mirostat 2 cuts the tokens more surprising than mu, which follows tau", () => {
  const logits = new Float32Array([0.5, 0.3, 0.15, 0.05].map(Math.log));
  // tau near 0: mu starts below every token's surprise, so the most likely alone is drawn.
  const tight = new Sampler({ temperature: 1, mirostat: { version: 2, tau: 0.01, eta: 0.1 } });
  assert.deepEqual([...drawn(tight, logits, 50)], [0]);
  // A large tau keeps them all.
  const loose = new Sampler({ temperature: 1, mirostat: { version: 2, tau: 10, eta: 0.1 } });
  assert.equal(drawn(loose, logits).size, 4);
  // Top-k is not applied with Mirostat.
  const withTopK = new Sampler({
    temperature: 1,
    topK: 1,
    mirostat: { version: 2, tau: 10, eta: 0.1 },
    seed: 1,
  });
  assert.equal(drawn(withTopK, logits).size, 4);
});

Deno.test("Sampler Mirostat 1 keeps the top k its Zipf estimate gives", () => {
  // A Zipf distribution of exponent 1.2 over 1000 tokens: with tau 3 (mu 6) the first k is
  // ((0.2 * 2^6) / (1 - 1000^-0.2))^(1 / 1.2), 10.
  const logits = new Float32Array(1000).map((_, i) => -1.2 * Math.log(i + 1));
  const first = new Set<number>();
  for (let seed = 0; seed < 300; seed++) {
    const s = new Sampler({ temperature: 1, mirostat: { version: 1, tau: 3, eta: 0.1 }, seed });
    first.add(s.sample(logits));
  }
  assert.ok(Math.max(...first) === 9, `${[...first].sort((a, b) => a - b)}`);
});
