/** Test helper of the fused ops: a small graph holding one unfused pattern, run both ways. */
import assert from "node:assert/strict";
import { type Tensor, tensor } from "../tensor/tensor.ts";
import { buildModel } from "../graph/build_model.ts";
import { parseDocument } from "../nnef/parse.ts";
import { Executor } from "../graph/executor.ts";
import { fuseGraph, type FusionKind } from "../graph/fuse.ts";
import { contiguous } from "./common.ts";
import { loadKernels } from "../../kernels/mod.ts";

/** Deterministic f32 values in [-1, 1). */
export function randomF32(shape: readonly number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return tensor("f32", shape, data);
}

function largest(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = contiguous(a).data as Float32Array;
  const y = contiguous(b).data as Float32Array;
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  return worst;
}

/**
 * Builds the graph `body` (inputs `x*` are f32 externals of the given shapes), checks that
 * fusion `kind` fires `count` times and that the fused outputs equal the unfused ones
 * within 1e-5 in TS and within `kernelTolerance` in the WASM kernels.
 */
export async function checkFusion(
  kind: FusionKind,
  inputs: Record<string, readonly number[]>,
  body: string[],
  outputs: string[],
  options: { count?: number; variables?: Record<string, Tensor>; kernelTolerance?: number } = {},
): Promise<void> {
  const names = Object.keys(inputs);
  const text = [
    "version 1.0;",
    `graph g(${names.join(", ")}) -> (${outputs.join(", ")})`,
    "{",
    ...names.map((n) =>
      `    ${n} = tract_core_external(shape = [${inputs[n]!.join(", ")}], datum_type = 'f32');`
    ),
    ...body.map((l) => `    ${l}`),
    "}",
  ].join("\n");
  const model = buildModel(parseDocument(text), new Map(Object.entries(options.variables ?? {})));
  const fusion = fuseGraph(model, { only: [kind] });
  assert.equal(fusion.counts[kind], options.count ?? 1, `${kind} fusions`);
  const feed = new Map(names.map((n, i) => [n, randomF32(inputs[n]!, i + 7)]));
  const plain = new Executor(model);
  const fused = new Executor(model, { fused: fusion.calls });
  const expected = plain.run(feed);
  const got = fused.run(feed);
  for (const o of outputs) {
    const worst = largest(got.get(o)!, expected.get(o)!);
    assert.ok(worst <= 1e-5, `${o} differs by ${worst} on the TS path`);
  }
  const kernels = await loadKernels({ threads: 1 });
  try {
    const values = fused.runBound(feed, fused.bind(feed), undefined, kernels);
    for (const o of outputs) {
      const worst = largest(values.get(model.output(o)!.id)!, expected.get(o)!);
      const tol = options.kernelTolerance ?? 1e-5;
      assert.ok(worst <= tol, `${o} differs by ${worst} in the kernels`);
    }
  } finally {
    kernels.close();
  }
}
