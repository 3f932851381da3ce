import assert from "node:assert/strict";
import { loadModel } from "../graph/load_model.ts";
import { logitsOutput, Session } from "./session.ts";
import { everyRowModel } from "./every_row_model.ts";
import { countsGraph } from "./_counts_graph.ts";
import { writeTinySmolLM2Archive } from "../../tests/_hub.ts";

const CASES = new URL("../../../shared/fixtures/", import.meta.url);
const PROMPT = [1, 403, 407, 261, 378];

/** The logits (vocab,) of each position of `prompt`, each from a prefill up to it. */
function eachPrefix(model: Awaited<ReturnType<typeof loadModel>>, prompt: readonly number[]) {
  return prompt.map((_, i) => new Session(model).prefill(prompt.slice(0, i + 1)));
}

Deno.test("everyRowModel moves the classifier of a torch_to_nnef export before its last-row slice", async () => {
  const model = await loadModel(
    new URL("stories260K/nnef/stories260K_f32.nnef.tgz", CASES).pathname,
  );
  const rows = everyRowModel(model)!;
  assert.notEqual(rows, model);
  assert.equal(everyRowModel(model), rows, "one variant per model");
  const shape = (m: typeof model) => logitsOutput(m).fact.shape.map(String);
  assert.deepEqual(shape(model), ["1", "1", "512"]);
  assert.deepEqual(shape(rows), ["1", "S", "512"]);
  const logits = new Session(rows, { everyRow: true }).prefill(PROMPT);
  const expected = eachPrefix(model, PROMPT);
  assert.deepEqual(
    expected.map((_, i) => logits.slice(i * 512, (i + 1) * 512)),
    expected,
  );
});

Deno.test("everyRowModel reads the converter's graphs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rill_every_row_" });
  try {
    const model = await loadModel(await writeTinySmolLM2Archive(dir));
    const rows = everyRowModel(model)!;
    const vocab = logitsOutput(model).fact.shape.at(-1) as number;
    const prompt = [1, 2000, 3000, 4000];
    const logits = new Session(rows, { everyRow: true }).prefill(prompt);
    assert.equal(logits.length, prompt.length * vocab);
    assert.deepEqual(
      prompt.map((_, i) => logits.slice(i * vocab, (i + 1) * vocab)),
      eachPrefix(model, prompt),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("everyRowModel is the model itself when its logits have rows, null when no classifier's", () => {
  const rows = countsGraph("tract_core_gather(eye, input_ids, axis = 0)"); // (1, S, 3)
  assert.equal(everyRowModel(rows), rows);
  assert.equal(
    everyRowModel(
      countsGraph("sum_reduce(tract_core_gather(eye, input_ids, axis = 0), axes = [1])"),
    ),
    null,
  );
});
