import assert from "node:assert/strict";
import { loadModel } from "../src/graph/model.ts";
import { Session } from "../src/engine/session.ts";
import { loadTokenizer } from "../src/engine/load_tokenizer.ts";
import { checkStep, fixture, greedy, PROMPT, readIo } from "./_stories260k.ts";

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
    const tokenizer = await loadTokenizer(fixture("tok512.bin"));
    const session = new Session(model);
    // llama2.c's -n counts positions: 64 steps print 4 prompt tokens and 60 generated.
    const ids = greedy(session, PROMPT, 252);
    assert.deepEqual(ids.slice(0, 60), io.greedy.continuation_64.slice(0, 60));
    const text64 = await Deno.readTextFile(fixture("greedy64.txt"));
    const text256 = await Deno.readTextFile(fixture("greedy256.txt"));
    assert.equal(tokenizer.decode([...PROMPT, ...ids.slice(0, 60)]), text64.replace(/\n$/, ""));
    assert.equal(tokenizer.decode([...PROMPT, ...ids]), text256.replace(/\n$/, ""));
  });
}

Deno.test("Session without the in-place cache gives the same tokens", async () => {
  const model = await loadModel(fixture("nnef/stories260K_f32.nnef.tgz"));
  const fast = greedy(new Session(model), PROMPT, 24);
  const naive = greedy(new Session(model, { appendInPlace: false, capacity: 1 }), PROMPT, 24);
  assert.deepEqual(fast, naive);
});
