import assert from "node:assert/strict";
import { tensor } from "../tensor/tensor.ts";
import { KvPool } from "../scheduler/kv_pool.ts";
import { checkFusion, randomF32 } from "./fused_testing.ts";
import { causalKey, fusedAttention } from "./fused_attention.ts";
import { contiguous, isStrided } from "./common.ts";
import { evalOp } from "./testing.ts";
import { transpose } from "./transpose.ts";
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

Deno.test("fusedAttention reads a causal paged KV cache in the kernels' memory in place", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const [H, Hk, S, L, D] = [4, 2, 3, 7, 8];
    const q = randomF32([1, H, S, D], 1);
    const layout = { shape: [1, Hk, 0, D], axis: 2 };
    const pool = new KvPool([layout, layout], {
      blocks: 3,
      blockSize: 3,
      itemType: "f32",
      kernels,
    });
    const table = [pool.allocate()!, pool.allocate()!, pool.allocate()!];
    pool.write(0, table, 0, randomF32([1, Hk, L, D], 2));
    pool.write(1, table, 0, randomF32([1, Hk, L, D], 3));
    const k = pool.view(0, table, L);
    const v = pool.view(1, table, L);
    const mask = tensor("f32", [1, 1, S, L]);
    const md = mask.data as Float32Array;
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < L; j++) md[i * L + j] = j > L - S + i ? -Infinity : 0;
    }
    const ts = fusedAttention(q, k, v, mask, 0.35, { bindings: new Map() });
    const kern = fusedAttention(q, k, v, mask, 0.35, { bindings: new Map(), kernels });
    const a = ts.data as Float32Array;
    const b = contiguous(kern).data as Float32Array;
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    assert.ok(worst <= 1e-5, `kernel attention differs by ${worst}`);
    // q as the transpose of rows of tokens (1, S, H, D), as the graph gives it: read in place,
    // and the result is a view of the kernel's rows of tokens, with the same items.
    const rows = contiguous(evalOp(transpose, { input: q, axes: [0, 2, 1, 3] }));
    const qView = evalOp(transpose, { input: rows, axes: [0, 2, 1, 3] });
    assert.ok(isStrided(qView));
    const viewed = fusedAttention(qView, k, v, mask, 0.35, { bindings: new Map(), kernels });
    assert.deepEqual(viewed.shape, [1, H, S, D]);
    assert.deepEqual(contiguous(viewed).data, b);
    const back = evalOp(transpose, { input: viewed, axes: [0, 2, 1, 3] });
    assert.ok(!isStrided(back), "the transpose back of the result copies nothing");
    // In a run, the result stays in the run's arena, where the next kernel reads it in place.
    const arena = kernels.openRun()!;
    const inRun = fusedAttention(qView, k, v, mask, 0.35, { bindings: new Map(), kernels, arena });
    assert.ok(arena.holds(inRun.data as Float32Array));
    assert.deepEqual(contiguous(inRun).data, b);
    arena.close();
    // The same items read as one row for every query (the causal mask's first row): not causal
    // any more, so the mask applies (positions past the first row's diagonal dropped).
    const firstRow = { dtype: "f32" as const, shape: [1, 1, 1, L], data: md };
    const masked = fusedAttention(q, k, v, firstRow, 0.35, { bindings: new Map(), kernels });
    const want = fusedAttention(q, k, v, firstRow, 0.35, { bindings: new Map() });
    const m = contiguous(masked).data as Float32Array;
    const w = want.data as Float32Array;
    assert.ok(
      m.every((x, i) => Math.abs(x - w[i]!) <= 1e-5),
      "the first row's mask was not applied",
    );
  } finally {
    kernels.close();
  }
});

Deno.test("causalKey tells a causal mask, a sliding window the rows outgrew, and anything else", () => {
  const DROP = -3.4028234663852886e38;
  /** (S, L) rows at positions L - S + i, seeing `sees(i, j)`. */
  const mask = (s: number, l: number, sees: (pos: number, j: number) => boolean) =>
    tensor(
      "f32",
      [1, 1, s, l],
      Float32Array.from({ length: s * l }, (_, k) => {
        const [i, j] = [Math.floor(k / l), k % l];
        return sees(l - s + i, j) ? 0 : DROP;
      }),
    );
  const windowOf = (w: number) => (pos: number, j: number) => j <= pos && j > pos - w;
  assert.equal(causalKey(mask(3, 7, (pos, j) => j <= pos)), "causal");
  // Rows still shorter than the window: causal as far as they show.
  assert.equal(causalKey(mask(3, 7, windowOf(10))), "causal");
  assert.equal(causalKey(mask(3, 7, windowOf(4))), "window 4");
  assert.equal(causalKey(mask(1, 9, windowOf(4))), "window 4");
  // The first rows see position 0, the later ones not.
  assert.equal(causalKey(mask(5, 6, windowOf(4))), "window 4");
  // Not one window, or not ending at the diagonal.
  assert.equal(causalKey(mask(3, 7, (pos, j) => j <= pos && j > pos - (pos % 2 ? 3 : 4))), null);
  assert.equal(causalKey(mask(3, 7, (pos, j) => j < pos)), null);
  assert.equal(causalKey(mask(3, 7, () => true)), null);
});
