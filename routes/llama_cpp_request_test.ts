import assert from "node:assert/strict";
import { ApiError } from "./errors.ts";
import { parseLlamaCppCompletion, parseLlamaCppInfill } from "./llama_cpp_request.ts";

Deno.test("parseLlamaCppCompletion reads one prompt of texts and ids, or a list of prompts", () => {
  assert.deepEqual(parseLlamaCppCompletion({ prompt: "Once" }).prompts, [["Once"]]);
  assert.deepEqual(parseLlamaCppCompletion({ prompt: [1, "Once", 5] }).prompts, [[1, "Once", 5]]);
  const many = parseLlamaCppCompletion({ prompt: ["Once", [1, 2], "Then"] });
  assert.deepEqual(many.prompts, [["Once"], [1, 2], ["Then"]]);
  assert.equal(many.many, true);
  assert.equal(parseLlamaCppCompletion({ prompt: "Once" }).many, false);
});

Deno.test("parseLlamaCppCompletion takes llama.cpp's defaults and turns off the samplers a list leaves out", () => {
  const plain = parseLlamaCppCompletion({ prompt: "x" });
  assert.deepEqual(plain.sampling, { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 });
  assert.equal(plain.maxTokens, undefined);
  assert.equal(plain.stream, false);
  const named = parseLlamaCppCompletion({
    prompt: "x",
    samplers: ["top_k", "top_p", "infill"],
    top_p: 0.9,
    repeat_penalty: 1.2,
  });
  assert.deepEqual(named.sampling, { temperature: 1, topK: 40, topP: 0.9, minP: 0 });
  // The letters of llama.cpp's string form.
  const letters = parseLlamaCppCompletion({ prompt: "x", samplers: "kmte", repeat_penalty: 1.2 });
  assert.deepEqual(letters.sampling, {
    temperature: 0.8,
    topK: 40,
    topP: 1,
    minP: 0.05,
    repetitionPenalty: 1.2,
  });
  // A negative temperature is greedy; -1 for n_predict and seed mean none.
  const greedy = parseLlamaCppCompletion({ prompt: "x", temperature: -1, n_predict: -1, seed: -1 });
  assert.equal(greedy.sampling.temperature, 0);
  assert.equal(greedy.maxTokens, undefined);
  assert.equal(greedy.sampling.seed, undefined);
  assert.equal(parseLlamaCppCompletion({ prompt: "x", max_tokens: 7 }).maxTokens, 7);
});

Deno.test("parseLlamaCppCompletion reads logit_bias as pairs or an object, texts apart, false as never", () => {
  const pairs = parseLlamaCppCompletion({
    prompt: "x",
    logit_bias: [[15, 1.5], [16, false], ["Hello", -2]],
  });
  assert.deepEqual([...pairs.sampling.logitBias!], [[15, 1.5], [16, -Infinity]]);
  assert.deepEqual(pairs.textBias, [["Hello", -2]]);
  const object = parseLlamaCppCompletion({ prompt: "x", logit_bias: { "15": 3 } });
  assert.deepEqual([...object.sampling.logitBias!], [[15, 3]]);
  assert.throws(
    () => parseLlamaCppCompletion({ prompt: "x", logit_bias: [[15]] }),
    (e: unknown) => e instanceof ApiError && e.param === "logit_bias[0]",
  );
});

Deno.test("parseLlamaCppCompletion: a grammar wins over a schema, as in llama.cpp", () => {
  const both = parseLlamaCppCompletion({
    prompt: "x",
    grammar: 'root ::= "a"',
    json_schema: { type: "string" },
  });
  assert.deepEqual(both.structured, { kind: "grammar", grammar: 'root ::= "a"', field: "grammar" });
  assert.equal(both.responseFormat, undefined);
  const schema = parseLlamaCppCompletion({ prompt: "x", json_schema: { type: "string" } });
  assert.equal(schema.responseFormat?.type, "json_schema");
});

Deno.test("parseLlamaCppInfill reads the parts, the files (`tmp` when unnamed) and names a malformed one", () => {
  const request = parseLlamaCppInfill({
    input_prefix: "def f():\n",
    input_suffix: "\n",
    input_extra: [{ filename: "a.py", text: "A = 1" }, { text: "B = 2" }],
    n_indent: 4,
    t_max_predict_ms: 250,
  });
  assert.deepEqual(request.prefix, ["def f():\n"]);
  assert.deepEqual(request.prompt, []);
  assert.deepEqual(request.files, [
    { filename: "a.py", text: "A = 1" },
    { filename: "tmp", text: "B = 2" },
  ]);
  assert.equal(request.minIndent, 4);
  assert.equal(request.timeLimitMs, 250);
  assert.throws(
    () => parseLlamaCppInfill({ input_extra: [{ filename: "a.py" }] }),
    (e: unknown) => e instanceof ApiError && e.param === "input_extra[0]",
  );
});
