import assert from "node:assert/strict";
import { add } from "./add.ts";
import { evalOp, items, t } from "./testing.ts";
import { binaryEval, markWeak } from "./common.ts";
import { Args } from "./args.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { loadKernels } from "../../kernels/mod.ts";

Deno.test("add broadcasts a trailing-padded operand", () => {
  const z = evalOp(add, { x: t("f32", [2, 2], [1, 2, 3, 4]), y: t("f32", [2], [10, 20]) });
  assert.deepEqual(z.shape, [2, 2]);
  assert.deepEqual(items(z).map((v) => Math.round(v * 1e4) / 1e4), [11, 12, 23, 24]);
});

Deno.test("add rounds f16 results and gives a literal the other operand's type", () => {
  const z = evalOp(add, { x: t("f16", [2], [1, 1000]), y: markWeak(t("f32", [], [0.0001])) });
  assert.equal(z.dtype, "f16");
  assert.deepEqual(items(z), [1, 1000]);
});

Deno.test("add of f32 operands of one shape gives the broadcasting loop's bits", () => {
  const n = 257;
  const x = t("f32", [1, n], Array.from({ length: n }, (_, i) => Math.sin(i) * 1e3));
  const y = t("f32", [1, n], Array.from({ length: n }, (_, i) => Math.cos(i) / 7));
  const shared = binaryEval(x, y, "f32", (p, q) => p + q);
  const same = evalOp(add, { x, y });
  assert.deepEqual(same.shape, [1, n]);
  assert.ok(same.data instanceof Float32Array);
  assert.deepEqual(items(same), items(shared));
});

Deno.test("add leaves an f32 result in the run's arena, for the kernels to read in place", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const arena = kernels.openRun()!;
    const x = t("f32", [4], [1, 2, 3, 4]);
    const [z] = add.eval(new Args<Tensor>("add", { x, y: x }), {
      bindings: new Map(),
      kernels,
      arena,
    });
    assert.ok(arena.holds(z!.data as Float32Array));
    assert.deepEqual(items(z!), [2, 4, 6, 8]);
    arena.close();
  } finally {
    kernels.close();
  }
});

Deno.test("add of operands in the run's arena gives the TS loop's bits and leaves its result there", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    // A prompt's residual add at the 110M shape.
    const n = 128 * 768;
    const x = t("f32", [1, 128, 768], Array.from({ length: n }, (_, i) => Math.sin(i) * 1e3));
    const y = t("f32", [1, 128, 768], Array.from({ length: n }, (_, i) => Math.cos(i) / 7));
    const want = evalOp(add, { x, y });
    const arena = kernels.openRun()!;
    const inArena = (v: Tensor): Tensor => {
      const view = arena.view(arena.alloc(n * 4)!, n);
      view.set(v.data as Float32Array);
      return { ...v, data: view };
    };
    const [xa, ya] = [inArena(x), inArena(y)];
    const ctx = { bindings: new Map(), kernels, arena };
    const [z] = add.eval(new Args<Tensor>("add", { x: xa, y: ya }), ctx);
    assert.ok(arena.holds(z!.data as Float32Array));
    const got = z!.data as Float32Array;
    const w = want.data as Float32Array;
    assert.equal(got.findIndex((v, i) => !Object.is(v, w[i])), -1);
    arena.close();
  } finally {
    kernels.close();
  }
});
