import assert from "node:assert/strict";
import { tensor } from "../tensor/tensor.ts";
import type { StridedTensor } from "./common.ts";
import { checkFusion, randomF32 } from "./fused_testing.ts";
import { fusedAttention } from "./fused_attention.ts";
import { loadKernels } from "../../kernels/mod.ts";

const REPEAT = [
  "kr = reshape(tile(unsqueeze(k, axes = [2]), repeats = [1, 1, 2, 1, 1]), shape = [1, 4, 5, 8]);",
  "vr = reshape(tile(unsqueeze(v, axes = [2]), repeats = [1, 1, 2, 1, 1]), shape = [1, 4, 5, 8]);",
];
const SHAPES = { q: [1, 4, 3, 8], k: [1, 2, 5, 8], v: [1, 2, 5, 8], m: [1, 1, 3, 5] };

Deno.test("fusedAttention matches the einsum fragment over repeated kv heads with a mask", async () => {
  await checkFusion("attention", SHAPES, [
    ...REPEAT,
    "dot = tract_core_einsum(inputs = [q, kr], expr = 'bcij,bckj->bcik', acc = 'f32');",
    "p = softmax(add(mul(dot, 0.35355339), m), axes = [3]);",
    "y = tract_core_einsum(inputs = [p, vr], expr = 'bcij,bcjk->bcik', acc = 'f32');",
  ], ["y"]);
});

Deno.test("fusedAttention matches tract_transformers_sdpa over repeated kv heads", async () => {
  await checkFusion("attention", SHAPES, [
    ...REPEAT,
    "y = tract_transformers_sdpa(q, kr, vr, m, datum_type = 'f32', acc_datum_type = 'f32', is_causal = false, scale = 0.3);",
  ], ["y"]);
});

Deno.test("fuseGraph leaves a head repeat on the wrong axis alone (heads would not map to h / group)", async () => {
  await checkFusion(
    "attention",
    SHAPES,
    [
      "kr = reshape(tile(unsqueeze(k, axes = [1]), repeats = [1, 2, 1, 1, 1]), shape = [1, 4, 5, 8]);",
      "vr = reshape(tile(unsqueeze(v, axes = [1]), repeats = [1, 2, 1, 1, 1]), shape = [1, 4, 5, 8]);",
      "y = tract_transformers_sdpa(q, kr, vr, m, scale = 0.3);",
    ],
    ["y"],
    { count: 1 },
  );
});

Deno.test("fusedAttention reads a causal KV cache in the kernels' memory in place", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const [H, Hk, S, L, D, cap] = [4, 2, 3, 7, 8, 16];
    const q = randomF32([1, H, S, D], 1);
    const kItems = randomF32([Hk, cap, D], 2).data as Float32Array;
    const vItems = randomF32([Hk, cap, D], 3).data as Float32Array;
    const view = (items: Float32Array): StridedTensor => {
      const offset = kernels.allocWeights(items.length * 4).offset;
      kernels.f32(offset, items.length).set(items);
      const data = kernels.f32(offset, items.length);
      return { dtype: "f32", shape: [1, Hk, L, D], data, strides: [0, cap * D, D, 1], offset: 0 };
    };
    const k = view(kItems);
    const v = view(vItems);
    const mask = tensor("f32", [1, 1, S, L]);
    const md = mask.data as Float32Array;
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < L; j++) md[i * L + j] = j > L - S + i ? -Infinity : 0;
    }
    const ts = fusedAttention(q, k, v, mask, 0.35, { bindings: new Map() });
    const kern = fusedAttention(q, k, v, mask, 0.35, { bindings: new Map(), kernels });
    const a = ts.data as Float32Array;
    const b = kern.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    assert.ok(worst <= 1e-5, `kernel attention differs by ${worst}`);
  } finally {
    kernels.close();
  }
});
