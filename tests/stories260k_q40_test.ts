import assert from "node:assert/strict";
import { loadModel } from "../src/graph/load_model.ts";
import { Session } from "../src/engine/session.ts";
import { checkStep, fixture, greedy, PROMPT, readIo } from "./_stories260k.ts";

for (const variant of ["stories260K_q40", "stories260K_q40_sdpa"]) {
  Deno.test(`loadModel runs ${variant} prefill and decode within 1e-3`, async () => {
    const model = await loadModel(fixture(`nnef/${variant}.nnef.tgz`));
    const io = await readIo("stories260K_q40.io.json");
    checkStep(model, io.step_a_prefill, 1e-3);
    checkStep(model, io.step_b_decode, 1e-3);
  });

  Deno.test(`Session greedy on ${variant} reproduces its 64-token continuation`, async () => {
    const model = await loadModel(fixture(`nnef/${variant}.nnef.tgz`));
    const io = await readIo("stories260K_q40.io.json");
    assert.deepEqual(io.greedy.prompt_tokens, PROMPT);
    assert.deepEqual(greedy(new Session(model), PROMPT, 64), io.greedy.continuation_64);
  });
}
