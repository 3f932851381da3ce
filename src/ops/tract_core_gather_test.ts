import assert from "node:assert/strict";
import { gatherFromRows8, tractCoreGather } from "./tract_core_gather.ts";
import { evalOp, items, t } from "./testing.ts";
import { dequantizeQ40, quantizeQ40 } from "../nnef/q40.ts";
import { type Tensor, tensor } from "../tensor/tensor.ts";
import { Args } from "./args.ts";
import { loadKernels } from "../../kernels/mod.ts";

Deno.test("tract_core_gather picks rows, negative indices from the end", () => {
  const y = evalOp(tractCoreGather, {
    input: t("f32", [3, 2], [1, 2, 3, 4, 5, 6]),
    indices: t("i64", [1, 2], [2, -3]),
    axis: 0,
    datum_type: "",
  });
  assert.deepEqual(y.shape, [1, 2, 2]);
  assert.deepEqual(items(y), [5, 6, 1, 2]);
});

Deno.test("tract_core_gather dequantizes Q4_0 rows to datum_type", () => {
  const w = Float32Array.from({ length: 64 }, (_, i) => (i % 5) - 2);
  const blocks = quantizeQ40(w);
  const expected = dequantizeQ40(blocks, 64);
  const y = evalOp(tractCoreGather, {
    input: tensor("q40", [2, 32], blocks),
    indices: t("i64", [1], [1]),
    axis: 0,
    datum_type: "f32",
  });
  assert.equal(y.dtype, "f32");
  assert.deepEqual(items(y), Array.from(expected.subarray(32)));
});

Deno.test("tract_core_gather takes Q4_0 rows out of the kernels' rows8 layout, along axis 0 only", async () => {
  // Two groups of 8 rows, then 3 rows as they were.
  const [n, k] = [19, 64];
  const w = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 0.7) * ((i % 7) - 3));
  const blocks = quantizeQ40(w);
  const expected = dequantizeQ40(blocks, n * k);
  for (const variant of ["relaxed", "simd128"] as const) {
    const kernels = await loadKernels({ threads: 1, variant });
    try {
      const slot = kernels.allocWeights(blocks.length);
      slot.bytes.set(blocks);
      kernels.interleaveQ4_0Rows8(slot.offset, n, k);
      const weight = tensor("q40", [n, k], kernels.u8(slot.offset, blocks.length));
      gatherFromRows8(weight, kernels, slot.offset);
      const y = evalOp(tractCoreGather, {
        input: weight,
        indices: t("i64", [4], [3, 18, 0, -2]),
        axis: 0,
        datum_type: "f32",
      });
      const rows = [3, 18, 0, 17].flatMap((r) => Array.from(expected.subarray(r * k, (r + 1) * k)));
      assert.deepEqual(items(y), rows, variant);
      assert.throws(
        () =>
          evalOp(tractCoreGather, {
            input: weight,
            indices: t("i64", [1], [0]),
            axis: 1,
            datum_type: "f32",
          }),
        /rows8 layout \(shape 19x64\) is gathered only along axis 0, not 1/,
      );
    } finally {
      kernels.close();
    }
  }
});

Deno.test("tract_core_gather leaves f32 rows in the run's arena, for the kernels to read in place", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const arena = kernels.openRun()!;
    const args = {
      input: t("f32", [3, 2], [1, 2, 3, 4, 5, 6]),
      indices: t("i64", [1, 1], [1]),
      axis: 0,
      datum_type: "",
    };
    const [y] = tractCoreGather.eval(new Args<Tensor>("tract_core_gather", args), {
      bindings: new Map(),
      kernels,
      arena,
    });
    assert.ok(arena.holds(y!.data as Float32Array));
    assert.deepEqual(items(y!), [3, 4]);
    arena.close();
  } finally {
    kernels.close();
  }
});
