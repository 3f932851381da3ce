import assert from "node:assert/strict";
import { tensor } from "../tensor/tensor.ts";
import { openArchive } from "./archive.ts";
import { formatModelSummary, formatShape, inspectModel, type ModelSummary } from "./inspect.ts";
import { encodeTensor } from "./tensor_encode.ts";
import { writeTensorFile } from "./tensor_file.ts";

const GRAPH = `version 1.0;
extension tract_registry tract_core;
extension tract_pulse_streaming_symbol;
extension tract_symbol B;
extension tract_assert B >= 1;
extension tract_assert decode: S == 1;
extension KHR_enable_fragment_definitions;

fragment tract_core_properties() -> (properties: (string, tensor<scalar>)[])
{
  properties = [("name", "tiny"), ("layers", 2), ("eps", 1e-05)];
}
fragment relu6( x: tensor<scalar> ) -> ( y: tensor<scalar> );

graph tiny( tokens, mask, state ) -> ( logits, state_out )
{
  tokens = tract_core_external(shape = [B, S], datum_type = 'I64');
  mask = external<logical>(shape = [B, S + 1]);
  state = external(shape = [B, 2 * S, 4]);
  w = variable(label = 'w', shape = [2, 32]);
  b = variable<scalar>(label = 'b', shape = [2]);
  logits = linear(state, w, b);
  state_out = state;
}
`;

async function withModel(
  files: Record<string, Uint8Array | string>,
  body: (summary: ModelSummary) => void,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rill_inspect_" });
  try {
    for (const [name, content] of Object.entries(files)) {
      await Deno.writeFile(
        `${dir}/${name}`,
        typeof content === "string" ? new TextEncoder().encode(content) : content,
      );
    }
    const archive = await openArchive(dir);
    try {
      body(await inspectModel(archive));
    } finally {
      await archive.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function datFiles(): Record<string, Uint8Array> {
  const q40 = tensor("q40", [2, 32]);
  const bias = tensor("f32", [2], new Float32Array([1, 2]));
  return {
    "w.dat": writeTensorFile(encodeTensor(q40)),
    "b.dat": writeTensorFile(encodeTensor(bias)),
  };
}

Deno.test("inspectModel reads externals of every form, with symbolic shape expressions", async () => {
  await withModel({ "graph.nnef": GRAPH, ...datFiles() }, (summary) => {
    assert.equal(summary.graph, "tiny");
    assert.deepEqual(summary.inputs, [
      { name: "tokens", shape: ["B", "S"], dtype: "i64" },
      { name: "mask", shape: ["B", "S + 1"], dtype: "bool" },
      { name: "state", shape: ["B", "2 * S", 4], dtype: "f32" },
    ]);
    assert.deepEqual(summary.outputs, [
      { name: "logits", shape: null, dtype: null },
      { name: "state_out", shape: null, dtype: null },
    ]);
    assert.equal(formatShape(summary.inputs[2]!.shape), "[B, 2 * S, 4]");
    assert.equal(formatShape(null), "?");
  });
});

Deno.test("inspectModel reads symbols, scenario asserts, extensions, fragments and properties", async () => {
  await withModel({ "graph.nnef": GRAPH, ...datFiles() }, (summary) => {
    assert.deepEqual(summary.registries, ["tract_core"]);
    assert.deepEqual(summary.symbols, ["S", "B"]);
    assert.deepEqual(summary.asserts, [
      { scenario: null, expr: "B >= 1" },
      { scenario: "decode", expr: "S == 1" },
    ]);
    assert.deepEqual(summary.extensions, ["KHR_enable_fragment_definitions"]);
    assert.deepEqual(summary.fragments, ["tract_core_properties", "relu6"]);
    assert.deepEqual(summary.properties, { name: "tiny", layers: "2", eps: "1e-05" });
  });
});

Deno.test("inspectModel counts tensors and payload bytes by item type from headers", async () => {
  await withModel({ "graph.nnef": GRAPH, ...datFiles() }, (summary) => {
    assert.equal(summary.tensorCount, 2);
    assert.equal(summary.q40TensorCount, 1);
    assert.deepEqual(summary.tensorsByType, {
      f32: { count: 1, bytes: 8 },
      q40: { count: 1, bytes: 36 },
    });
    assert.equal(summary.tensorBytes, 44);
    assert.equal(summary.quantizedTensors, 0);
  });
});

Deno.test("inspectModel counts graph.quant entries", async () => {
  const quant = '"state": linear_quantize(min = -1, max = 1, bits = 8);\n';
  await withModel({ "graph.nnef": GRAPH, "graph.quant": quant }, (summary) => {
    assert.equal(summary.quantizedTensors, 1);
    assert.equal(summary.tensorCount, 0);
  });
});

Deno.test("formatModelSummary prints every section", async () => {
  await withModel({ "graph.nnef": GRAPH, ...datFiles() }, (summary) => {
    const text = formatModelSummary(summary);
    assert.match(text, /^graph {7}tiny \(NNEF 1\.0\)$/m);
    assert.match(text, /^symbols {5}S, B$/m);
    assert.match(text, /^asserts {5}B >= 1; decode: S == 1$/m);
    assert.match(text, /^ {2}mask {4}bool \[B, S \+ 1\]$/m);
    assert.match(text, /^ {2}logits$/m);
    assert.match(text, /^tensors {5}2 \(44 bytes\), Q4_0 tensors: 1$/m);
    assert.match(text, /^ {2}q40\s+1 tensors\s+36 bytes$/m);
    assert.match(text, /^fragments {3}tract_core_properties, relu6$/m);
    assert.match(text, /^ {2}eps {5}1e-05$/m);
  });
});

Deno.test("inspectModel rejects a folder without graph.nnef", async () => {
  await assert.rejects(
    () => withModel({ "w.dat": datFiles()["w.dat"]! }, () => {}),
    (e: unknown) => e instanceof TypeError && /no graph\.nnef member/.test(e.message),
  );
});

Deno.test("inspectModel reports a syntax error in graph.nnef with its location", async () => {
  await assert.rejects(
    () => withModel({ "graph.nnef": "version 1.0;\ngraph g() -> () {" }, () => {}),
    (e: unknown) =>
      e instanceof SyntaxError &&
      /graph\.nnef:2:18: Expected '}' to close graph 'g', found end of input$/.test(e.message),
  );
});

Deno.test("inspectModel reports a bad tensor header naming the file", async () => {
  const bad = new Uint8Array(200);
  await assert.rejects(
    () => withModel({ "graph.nnef": GRAPH, "x.dat": bad }, () => {}),
    (e: unknown) => e instanceof TypeError && /x\.dat: bad magic/.test(e.message),
  );
});
