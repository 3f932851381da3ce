import assert from "node:assert/strict";
import { loadModel } from "./load_model.ts";
import { Executor } from "./executor.ts";
import { fuseGraph, type FusionKind } from "./fuse.ts";
import { Session } from "../engine/session.ts";
import { argmax } from "../engine/sampler.ts";

const DIR = new URL("../../../shared/fixtures/stories260K/nnef/", import.meta.url);
const PROMPT = [1, 403, 407, 261, 378];
const KINDS: FusionKind[] = ["rmsNorm", "rope", "siluGate", "attention"];

/** Logits of the prompt and 3 greedy steps (chosen by `ref`), for both sessions. */
function largestDifference(a: Session, ref: Session): number {
  ref.reset();
  let la = a.prefill(PROMPT);
  let lr = ref.prefill(PROMPT);
  let worst = 0;
  for (let step = 0; step < 4; step++) {
    for (let i = 0; i < la.length; i++) worst = Math.max(worst, Math.abs(la[i]! - lr[i]!));
    const id = argmax(lr);
    la = a.decode(id);
    lr = ref.decode(id);
  }
  return worst;
}

for (const name of ["stories260K_f32", "stories260K_f32_sdpa", "stories260K_q40"]) {
  Deno.test(`fuseGraph on ${name} finds every block's fusions, each exact within 1e-5`, async () => {
    const model = await loadModel(new URL(`${name}.nnef.tgz`, DIR).pathname);
    const all = fuseGraph(model);
    // 5 layers: 2 norms each and the final one, RoPE of q and k, one MLP gate, one attention.
    assert.deepEqual(all.counts, { rmsNorm: 11, rope: 10, siluGate: 5, attention: 5 });
    // Exact comparisons: the f32 cache (the default f16 one rounds K and V).
    const plain = new Session(model, { fuse: false, kvItemType: "f32" });
    for (const kind of [...KINDS.map((k) => [k]), KINDS]) {
      const fused = fuseGraph(model, { only: kind });
      const executor = new Executor(model, { fused: fused.calls });
      const worst = largestDifference(new Session(model, { kvItemType: "f32" }, executor), plain);
      assert.ok(worst <= 1e-5, `${kind.join("+")}: logits differ by ${worst}`);
    }
    // The fused graph runs far fewer steps (541 as exported, ~199 fused).
    const fusedSteps = new Executor(model, { fused: all.calls }).stepCount;
    assert.ok(fusedSteps < new Executor(model).stepCount / 2, `${fusedSteps} steps`);
  });
}
