import assert from "node:assert/strict";
import { Session } from "../engine/session.ts";
import { heldViews, plainExecutor } from "./executor.ts";
import { loadModel } from "./load_model.ts";
import type { PagedTensor } from "../tensor/paged.ts";
import { tensor } from "../tensor/tensor.ts";

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

Deno.test("heldViews does not read a paged cache view's data, which would gather a copy", () => {
  let gathers = 0;
  const paged: PagedTensor = {
    dtype: "f32",
    shape: [1, 2, 4],
    paged: {
      offset: 0,
      memory: null,
      blockSize: 16,
      itemType: "f16",
      outer: 1,
      inner: 4,
      runHeads: 1,
      runStride: 16 * 4 * 2,
      table: [0],
      tableAt: -1,
      length: 2,
    },
    get data(): Float32Array {
      gathers++;
      return new Float32Array(8);
    },
  };
  const plain = tensor("f32", [2], new Float32Array(2));
  assert.deepEqual([...heldViews([paged, plain])], [plain.data]);
  assert.equal(gathers, 0);
});
