import assert from "node:assert/strict";
import { loadModel } from "../graph/load_model.ts";
import { loadTokenizer } from "../tokenizer/load_tokenizer.ts";
import { generate } from "./generate.ts";

const FIXTURES = new URL("../../../shared/fixtures/stories260K/", import.meta.url);
const PROMPT = [1, 403, 407, 261, 378];

async function collect(iter: AsyncGenerator<number, void, void>): Promise<number[]> {
  const out: number[] = [];
  for await (const id of iter) out.push(id);
  return out;
}

Deno.test("generate yields the greedy continuation, stops at maxTokens and on abort", async () => {
  const model = await loadModel(new URL("nnef/stories260K_f32.nnef.tgz", FIXTURES).pathname);
  const tokenizer = await loadTokenizer(new URL("tok512.bin", FIXTURES).pathname);
  const greedy = { temperature: 0 };
  const ids = await collect(generate(model, tokenizer, PROMPT, { maxTokens: 8, sampling: greedy }));
  assert.deepEqual(ids, [432, 383, 286, 261, 376, 298, 315, 421]);
  const controller = new AbortController();
  const partial: number[] = [];
  for await (
    const id of generate(model, tokenizer, PROMPT, { signal: controller.signal, sampling: greedy })
  ) {
    partial.push(id);
    if (partial.length === 3) controller.abort();
  }
  assert.equal(partial.length, 3);
  const seeded = { temperature: 1, seed: 7 };
  assert.deepEqual(
    await collect(generate(model, tokenizer, PROMPT, { maxTokens: 6, sampling: seeded })),
    await collect(generate(model, tokenizer, PROMPT, { maxTokens: 6, sampling: seeded })),
  );
});
