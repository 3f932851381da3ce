import assert from "node:assert/strict";
import { parseDocument } from "../nnef/parse.ts";
import { tensor } from "../tensor/tensor.ts";
import { buildModel } from "./build_model.ts";

function build(body: string, head = "", tensors = new Map()) {
  const text = `version 1.0;\n${head}\ngraph g(x) -> (y)\n{\n${body}\n}\n`;
  return buildModel(parseDocument(text), tensors);
}

function f32(shape: number[], values: number[]) {
  return tensor("f32", shape, Float32Array.from(values));
}

Deno.test("buildModel reports an unknown op with its line", () => {
  assert.throws(
    () => build("    x = external(shape = [1, 3, 8, 8]);\n    y = conv(x, x);"),
    (e: unknown) =>
      e instanceof TypeError && e.message === "graph.nnef:6:9: unsupported operator 'conv'",
  );
});

Deno.test("buildModel names the op, line and shapes of an impossible shape", () => {
  assert.throws(
    () =>
      build(
        "    x = tract_core_external(shape = [1, S, 3], datum_type = 'f32');\n    y = matmul(x, x);",
        "extension tract_symbol S;",
      ),
    (e: unknown) =>
      e instanceof RangeError && e.message.startsWith("matmul at graph.nnef:6:5: ") &&
      e.message.includes("A: f32[1, S, 3]"),
  );
});

Deno.test("Model.run binds symbols, folds shape arithmetic and maps binary operators", () => {
  const model = build(
    [
      "    x = tract_core_external(shape = [1, S], datum_type = 'f32');",
      "    shape = tract_core_shape_of(x);",
      "    s = squeeze(slice(shape, axes = [0], begin = [1], end = [2], stride = [1]), axes = [0]);",
      "    half = s / 2;",
      "    y = x * 2.0 + 1.0;",
      "    y = slice(y, axes = [1], begin = [0], end = [half]);",
    ].join("\n"),
    "extension tract_registry tract_core;\nextension tract_symbol S;",
  );
  assert.equal(String(model.outputs[0]!.fact.shape[1]), "(S)/2");
  const out = model.run({ x: f32([1, 4], [1, 2, 3, 4]) }).get("y")!;
  assert.deepEqual(out.shape, [1, 2]);
  assert.deepEqual(Array.from(out.data as Float32Array), [3, 5]);
});

Deno.test("Model.run checks tract_assert lines, scenario ones only on request", () => {
  const model = build(
    "    x = tract_core_external(shape = [1, S], datum_type = 'f32');\n    y = neg(x);",
    "extension tract_symbol S;\nextension tract_assert S < 4;\nextension tract_assert tg: S==1;",
  );
  model.run({ x: f32([1, 3], [1, 2, 3]) });
  assert.throws(
    () => model.run({ x: f32([1, 4], [1, 2, 3, 4]) }),
    (e: unknown) => e instanceof RangeError && e.message === "Assertion S < 4 failed with S=4",
  );
  assert.throws(() => model.run({ x: f32([1, 2], [1, 2]) }, { scenario: "tg" }), RangeError);
  assert.throws(() => model.run({ x: f32([2, 2], [1, 2, 3, 4]) }), RangeError);
});

Deno.test("buildModel expands document fragments, literal arrays and reassignments", () => {
  const head = [
    "fragment tract_core_properties() -> (properties: (string, tensor<scalar>)[])",
    '{\n  properties = [("name", "demo")];\n}',
    "fragment twice(input: tensor<scalar>, k: tensor<scalar> = 2.0) -> (output: tensor<scalar>)",
    "{\n  output = input * k;\n}",
  ].join("\n");
  const model = build(
    [
      "    x = external<scalar>(shape = [2]);",
      "    w = variable<scalar>(label = '/w', shape = [2]);",
      "    y = twice(x);",
      "    y = add(y, [10.0, 20.0]);",
      "    y = add(y, w);",
    ].join("\n"),
    head,
    new Map([["w", f32([2], [100, 200])]]),
  );
  assert.equal(model.properties.get("name"), "demo");
  const out = model.run({ x: f32([2], [1, 2]) }).get("y")!;
  assert.deepEqual(Array.from(out.data as Float32Array), [112, 224]);
});

Deno.test("Model.run rejects an input of the wrong item type", () => {
  const model = build(
    "    x = tract_core_external(shape = [2], datum_type = 'i64');\n    y = neg(x);",
  );
  assert.throws(
    () => model.run({ x: f32([2], [1, 2]) }),
    (e: unknown) =>
      e instanceof TypeError && e.message === "Input 'x' has item type f32, the graph expects i64",
  );
});
