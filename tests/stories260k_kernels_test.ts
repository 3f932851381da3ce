import assert from "node:assert/strict";
import { loadModel } from "../src/graph/load_model.ts";
import { Session } from "../src/engine/session.ts";
import { argmax } from "../src/engine/sampler.ts";
import { loadKernels } from "../kernels/mod.ts";
import { assertLlama2cText, fixture, greedy, PROMPT, readIo } from "./_stories260k.ts";

/** Largest |a - b| of the logits of the prompt and of `steps` greedy decode steps. */
function logitError(a: Session, b: Session, steps: number): number {
  let la = a.prefill(PROMPT);
  let lb = b.prefill(PROMPT);
  let worst = 0;
  for (let s = 0;; s++) {
    for (let i = 0; i < la.length; i++) worst = Math.max(worst, Math.abs(la[i]! - lb[i]!));
    if (s === steps) return worst;
    const id = argmax(lb);
    la = a.decode(id);
    lb = b.decode(id);
  }
}

for (const variant of ["stories260K_f32", "stories260K_f32_sdpa"]) {
  Deno.test(`Session with kernels on ${variant} reproduces greedy64 and greedy256 text`, async () => {
    const kernels = await loadKernels({ threads: 1 });
    try {
      const model = await loadModel(fixture(`nnef/${variant}.nnef.tgz`));
      await assertLlama2cText(greedy(new Session(model, { kernels }), PROMPT, 252));
      const exact = { kvItemType: "f32" } as const;
      const worst = logitError(
        new Session(model, { kernels, ...exact }),
        new Session(model, exact),
        40,
      );
      // Measured 7.7e-6.
      assert.ok(worst <= 1e-4, `f32 kernel logits differ from the TS path by ${worst}`);
      // The default f16 cache rounds K and V: measured 8.7e-3 over the same steps.
      const f16 = logitError(new Session(model, { kernels }), new Session(model, exact), 40);
      assert.ok(f16 <= 0.05, `f16-cache kernel logits differ from the f32 TS path by ${f16}`);
    } finally {
      kernels.close();
    }
  });
}

for (const variant of ["stories260K_q40", "stories260K_q40_sdpa"]) {
  Deno.test(`Session with kernels on ${variant} reproduces its 64-token continuation`, async () => {
    const kernels = await loadKernels({ threads: 1 });
    try {
      const model = await loadModel(fixture(`nnef/${variant}.nnef.tgz`));
      const io = await readIo("stories260K_q40.io.json");
      const ids = greedy(new Session(model, { kernels }), PROMPT, 64);
      assert.deepEqual(ids, io.greedy.continuation_64.slice(0, ids.length));
      // Q8_0 activations (as llama.cpp) move the logits from the TS path's f32 activations:
      // 0.22 at most over the prompt and 40 steps (logits span about ±15); budget 0.3.
      const worst = logitError(new Session(model, { kernels }), new Session(model), 40);
      assert.ok(worst <= 0.3, `q40 kernel logits differ from the TS path by ${worst}`);
    } finally {
      kernels.close();
    }
  });
}
