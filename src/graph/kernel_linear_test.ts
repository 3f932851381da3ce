import assert from "node:assert/strict";
import { loadKernels } from "../../kernels/mod.ts";
import { loadModel } from "./model.ts";
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
      const reference = new Session(model);
      const fast = new Session(model, { kernels });
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
