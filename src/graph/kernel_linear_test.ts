import assert from "node:assert/strict";
import { loadKernels } from "../../kernels/mod.ts";
import { buildModel } from "./build_model.ts";
import { loadModel } from "./load_model.ts";
import { plainExecutor } from "./executor.ts";
import { parseDocument } from "../nnef/parse.ts";
import { type Tensor, tensor } from "../tensor/tensor.ts";
import type { StridedTensor } from "../ops/common.ts";
import { kernelLinears } from "./kernel_linear.ts";
import { Session } from "../engine/session.ts";
import { argmax } from "../engine/sampler.ts";

const NNEF = new URL("../../../shared/fixtures/stories260K/nnef/", import.meta.url);
const PROMPT = [1, 403, 407, 261, 378];

function greedy(session: Session, count: number): number[] {
  session.reset();
  let logits = session.prefill(PROMPT);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(argmax(logits));
    logits = session.decode(out[i]!);
  }
  return out;
}

Deno.test("kernelLinears runs stories260K's linears in the WASM kernels", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    for (const [variant, tolerance] of [["f32", 1e-4], ["q40", 0.5]] as const) {
      const model = await loadModel(new URL(`stories260K_${variant}.nnef.tgz`, NNEF).pathname);
      // q/k/v/o, gate, up, down in 5 layers and the lm head.
      assert.equal(kernelLinears(model, kernels).size, 36);
      // Exact comparisons: the f32 cache (the default f16 one rounds K and V).
      const reference = new Session(model, { kvItemType: "f32" });
      const fast = new Session(model, { kernels, kvItemType: "f32" });
      const a = reference.prefill(PROMPT);
      const b = fast.prefill(PROMPT);
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      assert.ok(worst <= tolerance, `${variant}: logits differ by ${worst}`);
      assert.deepEqual(greedy(fast, 16), greedy(reference, 16));
    }
  } finally {
    kernels.close();
  }
});

Deno.test("kernelLinears reads a strided input in its logical order", async () => {
  const text = [
    "version 1.0;",
    "graph g(x) -> (y)",
    "{",
    "    x = external<scalar>(shape = [2, 32]);",
    "    w = variable<scalar>(shape = [3, 32], label = 'w');",
    "    xu = unsqueeze(x, axes = [0]);",
    "    y = linear(xu, w, 0.0);",
    "}",
  ].join("\n");
  const w = Float32Array.from({ length: 96 }, (_, i) => (i % 7) - 3); // (3, 32)
  const model = buildModel(parseDocument(text), new Map([["w", tensor("f32", [3, 32], w)]]));
  const columns = Float32Array.from({ length: 64 }, (_, i) => i / 8); // (32, 2)
  // x (2, 32) as a transposed view of `columns`.
  const view: StridedTensor = {
    dtype: "f32",
    shape: [2, 32],
    data: columns,
    strides: [1, 2],
    offset: 0,
  };
  const inputs = new Map<string, Tensor>([["x", view]]);
  const executor = plainExecutor(model);
  const expected = executor.run(inputs).get("y")!; // (1, 2, 3)
  const kernels = await loadKernels({ threads: 1 });
  try {
    const overrides = kernelLinears(model, kernels);
    assert.equal(overrides.size, 1);
    const values = executor.runBound(inputs, executor.bind(inputs), overrides, kernels);
    const y = values.get(model.outputs[0]!.id)!; // (1, 2, 3)
    assert.deepEqual(y.shape, [1, 2, 3]);
    const got = y.data as Float32Array;
    const want = expected.data as Float32Array;
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i]! - want[i]!) < 1e-4, `item ${i}`);
    }
  } finally {
    kernels.close();
  }
});
