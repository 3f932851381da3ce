import assert from "node:assert/strict";
import { loadModel } from "../src/graph/load_model.ts";
import { Session } from "../src/engine/session.ts";
import { assertLlama2cText, checkStep, fixture, greedy, PROMPT, readIo } from "./_stories260k.ts";

for (const variant of ["stories260K_f32", "stories260K_f32_sdpa"]) {
  Deno.test(`loadModel runs ${variant} prefill and decode within 1e-4`, async () => {
    const model = await loadModel(fixture(`nnef/${variant}.nnef.tgz`));
    const io = await readIo("stories260K_f32.io.json");
    checkStep(model, io.step_a_prefill, 1e-4);
    checkStep(model, io.step_b_decode, 1e-4);
  });

  Deno.test(`Session greedy on ${variant} reproduces llama2.c's 64 and 256 steps`, async () => {
    const model = await loadModel(fixture(`nnef/${variant}.nnef.tgz`));
    const io = await readIo("stories260K_f32.io.json");
    const ids = greedy(new Session(model), PROMPT, 252);
    assert.deepEqual(ids.slice(0, 60), io.greedy.continuation_64.slice(0, 60));
    await assertLlama2cText(ids);
  });
}

Deno.test("Session without the in-place cache gives the same tokens", async () => {
  const model = await loadModel(fixture("nnef/stories260K_f32.nnef.tgz"));
  const fast = greedy(new Session(model), PROMPT, 24);
  const naive = greedy(new Session(model, { appendInPlace: false, capacity: 1 }), PROMPT, 24);
  assert.deepEqual(fast, naive);
});
