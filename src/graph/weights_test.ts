import assert from "node:assert/strict";
import { writeArchive } from "../nnef/archive_writer.ts";
import { loadKernels } from "../../kernels/mod.ts";
import { parseDocument } from "../nnef/parse.ts";
import { encodeTensor } from "../nnef/tensor_encode.ts";
import { writeTensorFile } from "../nnef/tensor_file.ts";
import { tensor } from "../tensor/tensor.ts";
import { loadModel } from "./load_model.ts";
import { writeTar } from "../nnef/tar.ts";
import {
  EAGER_MAX_ITEMS,
  kernelWeight,
  openFloatLabels,
  pendingWeight,
  readsEagerly,
  variableDecls,
} from "./weights.ts";

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

Deno.test("readsEagerly reads small variables and vectors of any size first, places large matrices", () => {
  assert.equal(readsEagerly([64, EAGER_MAX_ITEMS / 64]), true);
  assert.equal(readsEagerly([1, 1, 1_000_000]), true);
  assert.equal(readsEagerly([1_000_000]), true);
  assert.equal(readsEagerly([2, EAGER_MAX_ITEMS / 2 + 1]), false);
  assert.equal(readsEagerly([1, 2, 1, EAGER_MAX_ITEMS]), false);
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

/** A `.tgz` of `members` in the order given, written to `dir`. */
async function tgz(dir: string, members: [string, Uint8Array][]): Promise<string> {
  const path = `${dir}/m.nnef.tgz`;
  const tar = writeTar(members.map(([name, data]) => ({ name, data }))) as Uint8Array<
    ArrayBuffer
  >;
  const gzip = new Blob([tar]).stream().pipeThrough(new CompressionStream("gzip"));
  await Deno.writeFile(path, new Uint8Array(await new Response(gzip).arrayBuffer()));
  return path;
}

Deno.test("openFloatLabels names cast variables, or all of them when the graph names f16", () => {
  const cast = GRAPH.replace(
    "y = mul(add(x, w), s);",
    "y = mul(add(x, tract_core_cast(w, to = 'f32')), s);",
  );
  assert.deepEqual(openFloatLabels(parseDocument(GRAPH, "graph.nnef"), GRAPH), new Set());
  assert.deepEqual(openFloatLabels(parseDocument(cast, "graph.nnef"), cast), new Set(["w"]));
  const f16 = GRAPH.replace("external<scalar>", "tract_core_external").replace(
    "shape = [2, 4096])",
    "shape = [2, 4096], datum_type = 'f16')",
  );
  assert.deepEqual(
    openFloatLabels(parseDocument(f16, "graph.nnef"), f16),
    new Set(["w", "s"]),
  );
});

Deno.test("loadModel lazy .tgz: graph first, a large weight placed in the kernels' memory ahead of its bytes", async () => {
  const dir = await Deno.makeTempDir();
  const kernels = await loadKernels({ threads: 1 });
  try {
    const w = Float32Array.from({ length: ITEMS }, (_, i) => i / 8);
    const wDat = writeTensorFile(encodeTensor(tensor("f32", [2, ITEMS / 2], w)));
    const s = writeTensorFile(encodeTensor(tensor("f32", [1], Float32Array.of(2))));
    const graph = new TextEncoder().encode(GRAPH);
    const x = tensor("f32", [2, ITEMS / 2], new Float32Array(ITEMS).fill(1)); // (2, ITEMS / 2)
    for (
      const order of [
        [["graph.nnef", graph], ["s.dat", s], ["w.dat", wDat]],
        [["w.dat", wDat], ["s.dat", s], ["graph.nnef", graph]],
      ] as [string, Uint8Array][][]
    ) {
      const model = await loadModel(await tgz(dir, order), { kernels, lazy: true });
      await model.weightsReady;
      const value = model.values.find((v) => v.name === "w")!.fact.value!;
      assert.ok(kernelWeight(value), `w is in the kernels' memory (${order[0]![0]} first)`);
      assert.deepEqual(value.data, w);
    }
    // Without kernels, the same order reads the weight into a buffer of its own.
    const model = await loadModel(
      await tgz(dir, [["graph.nnef", graph], ["s.dat", s], ["w.dat", wDat]]),
      { lazy: true },
    );
    await model.weightsReady;
    const y = model.run({ x }).get("y")!.data as Float32Array; // (2, ITEMS / 2)
    assert.equal(y[8], (1 + 1) * 2);
  } finally {
    kernels.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadModel lazy .tgz: an f16 weight after the graph is read when cast, refused when the graph says f32", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const w = Float32Array.from({ length: ITEMS }, (_, i) => i / 8);
    const wDat = writeTensorFile(encodeTensor(tensor("f16", [2, ITEMS / 2], w)));
    const s = writeTensorFile(encodeTensor(tensor("f32", [1], Float32Array.of(2))));
    const x = tensor("f32", [2, ITEMS / 2], new Float32Array(ITEMS).fill(1)); // (2, ITEMS / 2)
    const cast = GRAPH.replace(
      "y = mul(add(x, w), s);",
      "y = mul(add(x, tract_core_cast(w, to = 'f32')), s);",
    );
    const ok = await loadModel(
      await tgz(dir, [["graph.nnef", new TextEncoder().encode(cast)], ["s.dat", s], [
        "w.dat",
        wDat,
      ]]),
      { lazy: true },
    );
    await ok.weightsReady;
    const y = ok.run({ x }).get("y")!.data as Float32Array; // (2, ITEMS / 2)
    assert.equal(y[8], (1 + 1) * 2);
    const bad = await loadModel(
      await tgz(dir, [["graph.nnef", new TextEncoder().encode(GRAPH)], ["s.dat", s], [
        "w.dat",
        wDat,
      ]]),
      { lazy: true },
    );
    await assert.rejects(bad.weightsReady, /w\.dat: 16512 bytes, the graph's variable<scalar>/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
