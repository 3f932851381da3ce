import assert from "node:assert/strict";
import { tractCoreGather } from "./tract_core_gather.ts";
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
