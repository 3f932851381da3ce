import assert from "node:assert/strict";
import { loadService } from "./load_service.ts";

const FIXTURES = new URL("../../../shared/fixtures/", import.meta.url);
const ARCHIVE = new URL("stories260K/nnef/stories260K_f32.nnef.tgz", FIXTURES).pathname;

Deno.test("loadService takes the chat template from the tokenizer's folder, else the plain one", async () => {
  const plain = await loadService(ARCHIVE, {
    modelId: "s",
    tokenizer: new URL("stories260K/tok512.bin", FIXTURES).pathname,
  });
  assert.equal(plain.service.renderChat([{ role: "user", content: "Hi" }]), "user: Hi\nassistant:");
  assert.equal(plain.service.contextLength, 512);
  assert.ok(plain.bytes > 1_000_000);
  assert.equal((await plain.weightsReady).bytes, plain.bytes);
  const smol = await loadService(ARCHIVE, {
    modelId: "s",
    tokenizer: new URL("tokenizers/smollm2", FIXTURES).pathname,
  });
  assert.match(
    smol.service.renderChat([{ role: "user", content: "Hi" }]),
    /^<\|im_start\|>system\n.*<\|im_end\|>\n<\|im_start\|>user\nHi<\|im_end\|>\n<\|im_start\|>assistant\n$/s,
  );
  await smol.weightsReady;
});

Deno.test("loadService without a tokenizer in the archive or given says how to give one", async () => {
  await assert.rejects(
    loadService(ARCHIVE, { modelId: "s" }),
    (e: Error) => e instanceof TypeError && /--tokenizer or TOKENIZER/.test(e.message),
  );
});
