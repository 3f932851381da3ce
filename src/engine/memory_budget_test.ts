import assert from "node:assert/strict";
import { loadModel } from "../graph/load_model.ts";
import { fixture } from "../../tests/_stories260k.ts";
import {
  fixedOverheadBytes,
  kvBytesPerPosition,
  planMemory,
  RUNTIME_BYTES,
  WORKER_BYTES,
} from "./memory_budget.ts";

const MiB = 2 ** 20;
const LIMIT = { bytes: 768 * MiB, from: "/sys/fs/cgroup/memory.max" };

Deno.test("kvBytesPerPosition sums the cache inputs with the past axis at one position", async () => {
  const model = await loadModel(fixture("nnef/stories260K_f32.nnef.tgz"));
  // 5 layers x (key, value) x 4 kv heads x head size 8 x 2 bytes (the pool's f16).
  assert.equal(kvBytesPerPosition(model), 5 * 2 * 4 * 8 * 2);
  assert.equal(kvBytesPerPosition(model, 4), 5 * 2 * 4 * 8 * 4);
});

Deno.test("fixedOverheadBytes adds the runtime, each kernel worker and the JS heap", () => {
  assert.equal(fixedOverheadBytes(0, 50 * MiB), RUNTIME_BYTES + 50 * MiB);
  assert.equal(fixedOverheadBytes(3, 0), RUNTIME_BYTES + 3 * WORKER_BYTES);
  assert.ok(fixedOverheadBytes(0) > RUNTIME_BYTES);
});

Deno.test("planMemory leaves what the weights and the process do not take to the KV caches", () => {
  const plan = planMemory(LIMIT, {
    model: "m",
    weightBytes: 200 * MiB,
    fixedBytes: 168 * MiB,
    kvBytesPerPosition: 46080,
    contextLength: 2048,
  });
  assert.equal(plan.kvBudgetBytes, 400 * MiB);
  assert.equal(plan.sequences, Math.floor((400 * MiB) / (46080 * 2048)));
  assert.equal(plan.limit, LIMIT);
  const unbounded = planMemory(LIMIT, {
    model: "m",
    weightBytes: 200 * MiB,
    fixedBytes: 168 * MiB,
    kvBytesPerPosition: 1024,
    contextLength: undefined,
  });
  assert.equal(unbounded.sequences, (400 * MiB) / 1024);
  const cacheless = planMemory(LIMIT, {
    model: "m",
    weightBytes: 0,
    fixedBytes: 0,
    kvBytesPerPosition: 0,
    contextLength: 512,
  });
  assert.equal(cacheless.sequences, Infinity);
});

Deno.test("planMemory refuses a model whose weights, one full context and the process exceed the limit", () => {
  assert.throws(
    () =>
      planMemory(LIMIT, {
        model: "SmolLM2-360M",
        weightBytes: 300 * MiB,
        fixedBytes: 180 * MiB,
        kvBytesPerPosition: 81920,
        contextLength: 8192,
      }),
    {
      name: "RangeError",
      message: "Model 'SmolLM2-360M' does not fit in the 768 MiB memory limit " +
        "(/sys/fs/cgroup/memory.max): it needs 1120 MiB, that is 300 MiB of weights + 640 MiB " +
        "of KV cache for one 8192-token sequence (81920 bytes per position) + 180 MiB for the " +
        "process itself; raise the limit (deploy.runtime.memoryLimit in deno.json on Deno " +
        "Deploy, or RILL_MEMORY_LIMIT) or serve a smaller model",
    },
  );
  assert.throws(
    () =>
      planMemory(LIMIT, {
        model: "m",
        weightBytes: 700 * MiB,
        fixedBytes: 100 * MiB,
        kvBytesPerPosition: 0,
        contextLength: 512,
      }),
    /needs 800 MiB, that is 700 MiB of weights \+ 0\.0 MiB of KV cache/,
  );
});

Deno.test("planMemory keeps weights and KV caches within the kernels' address space", () => {
  const big = { bytes: 16 * 1024 * MiB, from: "RILL_MEMORY_LIMIT" };
  const needs = {
    model: "m",
    weightBytes: 3 * 1024 * MiB,
    fixedBytes: 200 * MiB,
    kvBytesPerPosition: 2 * MiB,
    contextLength: 256,
    addressSpaceBytes: 4 * 1024 * MiB,
  };
  assert.equal(planMemory(big, needs).kvBudgetBytes, 1024 * MiB);
  assert.throws(
    () => planMemory(big, { ...needs, contextLength: 1024 }),
    /does not fit in the 4096 MiB wasm32 memory of the kernels: .*; serve a smaller model$/,
  );
});
