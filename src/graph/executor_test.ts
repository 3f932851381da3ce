import assert from "node:assert/strict";
import { Session } from "../engine/session.ts";
import { plainExecutor } from "./executor.ts";
import { loadModel } from "./load_model.ts";

const ARCHIVE = new URL(
  "../../../shared/fixtures/stories260K/nnef/stories260K_f32.nnef.tgz",
  import.meta.url,
).pathname;

Deno.test("plainExecutor compiles a model once, for Model.run and every fuse: false session", async () => {
  const model = await loadModel(ARCHIVE);
  const plain = plainExecutor(model);
  assert.equal(plainExecutor(model), plain);
  assert.equal(new Session(model, { fuse: false }).executor, plain);
  assert.notEqual(new Session(model).executor, plain);
  assert.notEqual(plainExecutor(await loadModel(ARCHIVE)), plain);
});
