import assert from "node:assert/strict";
import { loadModel } from "../graph/load_model.ts";
import { Session } from "./session.ts";
import { hiddenModel } from "./hidden_model.ts";
import { loadService } from "./load_service.ts";
import { loadKernels } from "../../kernels/mod.ts";

const FIXTURES = new URL("../../../shared/fixtures/stories260K/", import.meta.url);
const ARCHIVE = new URL("nnef/stories260K_f32.nnef.tgz", FIXTURES).pathname;
const TOKENIZER = new URL("tok512.bin", FIXTURES).pathname;
const PROMPT = [1, 403, 407, 300, 22, 91, 5, 60, 61];

Deno.test("hiddenModel gives the classifier's input: the logits are its linear, to f32 rounding", async () => {
  const model = await loadModel(ARCHIVE);
  const hidden = hiddenModel(model)!;
  assert.equal(hiddenModel(model), hidden, "one variant per model");
  const logits = new Session(model).prefill(PROMPT);
  const state = new Session(hidden).prefill(PROMPT);
  // logits = W (vocab, dim) . state + b, W the classifier's filter.
  const classifier = model.nodes.find((n) => n.outputs.includes(model.outputs[0]!.id))!;
  const value = (arg: string) => {
    const a = classifier.args.get(arg)!;
    return model.values[a.kind === "tensor" ? a.id : -1]!.fact.value!;
  };
  const [w, b] = [value("filter"), value("bias")];
  const dim = w.shape.at(-1)!;
  assert.equal(state.length, dim);
  let worst = 0;
  for (let v = 0; v < logits.length; v++) {
    let sum = (b.data as Float32Array)[b.shape.length === 0 ? 0 : v]!;
    for (let d = 0; d < dim; d++) sum += (w.data as Float32Array)[v * dim + d]! * state[d]!;
    worst = Math.max(worst, Math.abs(sum - logits[v]!));
  }
  assert.ok(worst < 1e-4, `worst ${worst}`);
});

Deno.test("an embedding runs in the scheduler's steps beside a generation, and neither changes the other", async () => {
  using kernels = await loadKernels({ threads: 2 });
  const loaded = await loadService(ARCHIVE, {
    modelId: "s",
    tokenizer: TOKENIZER,
    kernels,
    prefillChunk: 4,
  });
  await loaded.weightsReady;
  const { service } = loaded;
  assert.equal(service.embeddingSize, 64);
  const greedy = async () => {
    let ids: readonly number[] = [];
    for await (
      const e of service.generate(PROMPT, {
        sampling: { temperature: 0 },
        stop: [],
        maxTokens: 24,
      })
    ) if (e.type === "done") ids = e.ids;
    return ids;
  };
  const other = [1, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90];
  const aloneIds = await greedy();
  const alone = await service.embed(other);
  const [ids, together] = await Promise.all([greedy(), service.embed(other)]);
  assert.deepEqual(ids, aloneIds);
  assert.deepEqual(together, alone);
  // The kernels' state is the TypeScript graph's, to f32 rounding.
  const reference = new Session(hiddenModel(await loadModel(ARCHIVE))!).prefill(other);
  const worst = Math.max(...alone.map((x, i) => Math.abs(x - reference[i]!)));
  assert.ok(worst < 1e-4, `worst ${worst}`);
});
