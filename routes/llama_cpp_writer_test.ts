import assert from "node:assert/strict";
import { project } from "./llama_cpp_writer.ts";

Deno.test("project keeps the named fields, reads paths inside objects and keys them by the path", () => {
  const result = { content: "x", stop: true, timings: { prompt_n: 3, predicted_n: 2 } };
  assert.deepEqual(project(result, undefined), result);
  assert.deepEqual(project(result, ["content", "timings/prompt_n", "timings/none", "nothing"]), {
    content: "x",
    "timings/prompt_n": 3,
  });
  // Only a result's own fields: no prototype's.
  assert.deepEqual(project(result, ["constructor", "content/length"]), {});
});
