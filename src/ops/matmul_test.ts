import assert from "node:assert/strict";
import { matmul } from "./matmul.ts";
import { evalOp, inferOp, items, t } from "./testing.ts";
import { dequantizeQ40, quantizeQ40 } from "../nnef/q40.ts";
import { tensor } from "../tensor/tensor.ts";

Deno.test("matmul multiplies with transposes and batch broadcasting", () => {
  const a = t("f32", [1, 2, 2], [1, 2, 3, 4]);
  const b = t("f32", [2, 2, 2], [1, 0, 0, 1, 2, 0, 0, 2]);
  const c = evalOp(matmul, { A: a, B: b, transposeA: false, transposeB: false });
  assert.deepEqual(c.shape, [2, 2, 2]);
  assert.deepEqual(items(c), [1, 2, 3, 4, 2, 4, 6, 8]);
  const ct = evalOp(matmul, { A: a, B: a, transposeA: false, transposeB: true });
  assert.deepEqual(items(ct), [5, 11, 11, 25]);
  assert.throws(
    () =>
      inferOp(matmul, {
        A: { dtype: "f32", shape: [2, 3] },
        B: { dtype: "f32", shape: [2, 3] },
        transposeA: false,
        transposeB: false,
      }),
    RangeError,
  );
});

Deno.test("matmul reads a Q4_0 B block by block", () => {
  const w = Float32Array.from({ length: 64 }, (_, i) => (i % 7) - 3); // (2, 32)
  const q = tensor("q40", [2, 32], quantizeQ40(w));
  const x = t("f32", [1, 32], Array.from({ length: 32 }, (_, i) => i / 32));
  const y = items(evalOp(matmul, { A: x, B: q, transposeA: false, transposeB: true }));
  const deq = tensor("f32", [2, 32], dequantizeQ40(q.data as Uint8Array, 64));
  const f = items(evalOp(matmul, { A: x, B: deq, transposeA: false, transposeB: true }));
  y.forEach((v, i) => assert.ok(Math.abs(v - f[i]!) < 1e-4));
});
