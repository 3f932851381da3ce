import assert from "node:assert/strict";
import { writeArchive } from "../../models/archive_writer.ts";
import { loadKernels } from "../../kernels/mod.ts";
import { parseDocument } from "../nnef/parse.ts";
import { encodeTensor, writeTensorFile } from "../nnef/tensor_file.ts";
import { tensor } from "../tensor/tensor.ts";
import { loadModel } from "./model.ts";
import { kernelWeight, pendingWeight, variableDecls } from "./weights.ts";

const ITEMS = 8192;

/** A graph y = (x + w) * s with w (2, ITEMS / 2) read from `w.dat`. */
const GRAPH = `version 1.0;
graph g(x) -> (y) {
  x = external<scalar>(shape = [2, ${ITEMS / 2}]);
  w = variable<scalar>(label = 'w', shape = [2, ${ITEMS / 2}]);
  s = variable<scalar>(label = 's', shape = [1]);
  y = mul(add(x, w), s);
}
`;

async function archive(dir: string, w: Uint8Array): Promise<string> {
  const path = `${dir}/m.nnef.tar`;
  const graph = new TextEncoder().encode(GRAPH);
  const s = writeTensorFile(encodeTensor(tensor("f32", [1], Float32Array.of(2))));
  await writeArchive(path, [
    { name: "graph.nnef", size: graph.length, produce: () => graph },
    { name: "w.dat", size: w.length, produce: () => w },
    { name: "s.dat", size: s.length, produce: () => s },
  ]);
  return path;
}

Deno.test("variableDecls lists each label once, in order, with its literal shape and type", () => {
  const doc = parseDocument(GRAPH, "graph.nnef");
  assert.deepEqual(variableDecls(doc), [
    { label: "w", shape: [2, ITEMS / 2], generic: "scalar" },
    { label: "s", shape: [1], generic: "scalar" },
  ]);
});

Deno.test("loadModel places a large weight in the kernels' memory, aligned, readable after growth", async () => {
  const dir = await Deno.makeTempDir();
  const kernels = await loadKernels({ threads: 1 });
  try {
    const w = Float32Array.from({ length: ITEMS }, (_, i) => i / 8);
    const path = await archive(
      dir,
      writeTensorFile(encodeTensor(tensor("f32", [2, ITEMS / 2], w))),
    );
    const model = await loadModel(path, { kernels });
    const value = model.values.find((v) => v.name === "w")!.fact.value!;
    const slot = kernelWeight(value);
    assert.ok(slot, "w is in the kernels' memory");
    assert.equal(slot.offset % 128, 0);
    assert.equal(pendingWeight(value), undefined);
    // Growing a private memory detaches old views: the weight's view follows.
    kernels.allocWeights(64 << 20);
    assert.deepEqual(value.data, w);
    const x = tensor("f32", [2, ITEMS / 2], new Float32Array(ITEMS).fill(1));
    const y = model.run({ x }).get("y")!.data as Float32Array; // (2, ITEMS / 2)
    assert.equal(y[8], (1 + 1) * 2);
    assert.ok(model.loadStats!.bytes >= ITEMS * 4);
    assert.ok(model.loadStats!.weightsMs >= model.loadStats!.graphMs);
  } finally {
    kernels.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadModel rejects a weight whose header disagrees with what its size suggests", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Same byte count as f32 items, but i32.
    const ints = tensor("i32", [2, ITEMS / 2], new Float64Array(ITEMS));
    const path = await archive(dir, writeTensorFile(encodeTensor(ints)));
    await assert.rejects(loadModel(path), (e: Error) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /w\.dat: header says i32 \(plain\) of dims \[2,4096\]/);
      return true;
    });
    const lazy = await loadModel(path, { lazy: true });
    await assert.rejects(lazy.weightsReady, RangeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
