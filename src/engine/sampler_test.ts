import assert from "node:assert/strict";
import { argmax, Sampler } from "./sampler.ts";

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
