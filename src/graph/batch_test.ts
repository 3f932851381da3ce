import assert from "node:assert/strict";
import { loadModel } from "./load_model.ts";
import { buildModel } from "./build_model.ts";
import { parseDocument } from "../nnef/parse.ts";
import type { Model } from "./model.ts";
import { Executor } from "./executor.ts";
import { fuseGraph } from "./fuse.ts";
import { kernelLinears } from "./kernel_linear.ts";
import { BatchPlan, type Segment, stackRows } from "./batch.ts";
import { contiguous, type StridedTensor } from "../ops/common.ts";
import { type Tensor, tensor } from "../tensor/tensor.ts";
import { evalDim } from "../tensor/dim.ts";
import { type Kernels, loadKernels } from "../../kernels/mod.ts";

const FIXTURES = new URL("../../../shared/fixtures/stories260K/nnef/", import.meta.url).pathname;
const PROMPTS = [[1, 403, 407, 261, 378, 300, 271], [1, 320, 395]];

/** A sequence's first step: its tokens (1, S) and empty caches (P = 0). */
function firstStep(model: Model, executor: Executor, ids: readonly number[]): Segment {
  const inputs = new Map<string, Tensor>();
  for (const io of model.inputs) {
    const bind = new Map([["S", ids.length], ["P", 0]]);
    const shape = io.fact.shape.map((d) => evalDim(d, bind)); // (1, S) or (1, H, 0, D)
    inputs.set(
      io.name,
      tensor(io.fact.dtype, shape, io.name === "input_ids" ? Float64Array.from(ids) : undefined),
    );
  }
  return { inputs, bindings: executor.bind(inputs) };
}

/** Every output of the segment, row-major. */
function outputs(model: Model, values: Map<number, Tensor>): Map<string, Float32Array> {
  return new Map(
    model.outputs.map((o) => [o.name, contiguous(values.get(o.id)!).data as Float32Array]),
  );
}

for (const name of ["f32", "q40"]) {
  for (const withKernels of [false, true]) {
    Deno.test(`A stories260K_${name} step computes the last layer after attention on its last row only, with the same outputs (${withKernels ? "kernels" : "TS path"})`, async () => {
      const kernels: Kernels | null = withKernels ? await loadKernels({ threads: 1 }) : null;
      try {
        const model = await loadModel(
          `${FIXTURES}stories260K_${name}.nnef.tgz`,
          kernels ? { kernels } : {},
        );
        await model.weightsReady;
        const executor = new Executor(model, { fused: fuseGraph(model).calls });
        const shared = kernels ? kernelLinears(model, kernels) : new Map();
        const logits = model.outputs.find((o) => o.name === "outputs")!;
        const plan = new BatchPlan(executor, "input_ids", new Set(), new Set([logits.id]));
        // The last layer's o-projection, residuals, norms, MLP and the classifier.
        assert.ok(plan.lastRowSteps >= 8, `${plan.lastRowSteps} last-row steps`);
        const segments = PROMPTS.map((ids) => firstStep(model, executor, ids));
        const expected = segments.map((s) =>
          outputs(model, executor.runBound(s.inputs, s.bindings, shared, kernels))
        );
        const alone = segments.map((s) => plan.runNow([s], shared, kernels)[0]!);
        const together = plan.runNow(segments, shared, kernels);
        for (const [i, got] of [...alone, ...together].entries()) {
          const want = expected[i % PROMPTS.length]!;
          for (const [out, data] of outputs(model, got)) {
            assert.deepEqual(data, want.get(out), `${out} of sequence ${i % PROMPTS.length}`);
          }
        }
      } finally {
        kernels?.close();
      }
    });
  }
}

Deno.test("A slice that keeps the last row by constant bounds (begin -1, end 0) is picked, and what feeds it runs on last rows", () => {
  const text = [
    "version 1.0;",
    "extension tract_symbol S;",
    "graph last(input_ids) -> (outputs)",
    "{",
    "    input_ids = tract_core_external(shape = [1, S], datum_type = 'i64');",
    "    table = variable<scalar>(label = 'table', shape = [3, 2]);",
    "    rows = tract_core_gather(table, input_ids, axis = 0);",
    "    scaled = mul(rows, 2.0);",
    "    last = slice(scaled, axes = [1], begin = [-1], end = [0]);",
    "    outputs = add(last, 1.0);",
    "}",
  ].join("\n");
  const table = tensor("f32", [3, 2], Float32Array.of(1, 2, 3, 4, 5, 6));
  const model = buildModel(parseDocument(text), new Map([["table", table]]));
  const executor = new Executor(model);
  const plan = new BatchPlan(executor, "input_ids", new Set(), new Set([model.outputs[0]!.id]));
  // The gather and the scaling feed only the slice, the add only the output.
  assert.equal(plan.lastRowSteps, 3);
  const segments = [[2, 0, 1], [0, 2]].map((ids): Segment => {
    const inputs = new Map([["input_ids", tensor("i64", [1, ids.length], Float64Array.from(ids))]]);
    return { inputs, bindings: executor.bind(inputs) };
  });
  const got = plan.runNow(segments, new Map(), null).map((out) =>
    outputs(model, out).get("outputs")
  );
  assert.deepEqual(got, [Float32Array.of(7, 9), Float32Array.of(11, 13)]);
});

Deno.test("stackRows concatenates parts that lie rows outermost and keeps that order; others stack row-major", () => {
  const [h, d] = [3, 4];
  // Two segments' (1, S, H, D) rows seen through a transpose as (1, H, S, D), S = 2 and 1.
  const parts = [2, 1].map((s, i) => {
    const items = Float32Array.from({ length: s * h * d }, (_, j) => 100 * i + j); // (S, H, D)
    const view: StridedTensor = {
      dtype: "f32",
      shape: [1, h, s, d],
      data: items,
      strides: [s * h * d, d, h * d, 1],
      offset: 0,
    };
    return view;
  });
  const placed = new Float32Array(3 * h * d);
  const rows = stackRows(parts, 2, (n) => (n === placed.length ? placed : null))!;
  assert.deepEqual(rows.counts, [2, 1]);
  assert.equal(rows.t.data, placed, "not placed where asked");
  // The items as they lay, one segment after the other...
  assert.deepEqual([...placed], [...parts.flatMap((p) => [...(p.data as Float32Array)])]);
  // ... read as the (1, H, 3, D) stack of the two.
  const want = (hh: number, s: number, dd: number) => {
    const [i, row] = s < 2 ? [0, s] : [1, s - 2];
    return 100 * i + (row * h + hh) * d + dd;
  };
  const got = contiguous(rows.t).data as Float32Array; // (1, H, 3, D)
  got.forEach((v, j) => {
    const [hh, s, dd] = [Math.floor(j / (3 * d)), Math.floor(j / d) % 3, j % d];
    assert.equal(v, want(hh, s, dd), `item (${hh}, ${s}, ${dd})`);
  });
  // Parts that already lie one after the other are viewed as one, neither copied nor placed.
  const halves = [placed.subarray(0, 2 * h * d), placed.subarray(2 * h * d)];
  const again = stackRows(parts.map((p, i) => ({ ...p, data: halves[i]! })), 2, () => {
    throw new Error("placed");
  })!;
  assert.equal((again.t.data as Float32Array).buffer, placed.buffer);
  assert.deepEqual([...contiguous(again.t).data as Float32Array], [...got]);
  // Row-major (1, H, S, D) parts of more than one row interleave, into a new array.
  const plain = [tensor("f32", [1, h, 2, d], contiguous(parts[0]!).data), parts[1]!];
  const stacked = stackRows(plain, 2)!;
  assert.deepEqual([...contiguous(stacked.t).data as Float32Array], [...got]);
  assert.deepEqual(stacked.t.shape, [1, h, 3, d]);
});
