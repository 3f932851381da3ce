/**
 * tract's NNEF conformance cases (`harness/nnef-test-cases`) run through Rill's graph runtime.
 * Each case is run as its `runme.sh` runs it: from `io.npz` when it has one, compared with
 * tract's `close_enough` bound for the `--approx` level the script asks for (`close` when it
 * names none); a case run with `--allow-random-input` gets seeded inputs and a reference
 * computed here. Cases whose operators belong to other kinds of models are listed in
 * `NON_TEXT_CASES` and must fail with "unsupported operator".
 */
import assert from "node:assert/strict";
import { Executor } from "../src/graph/executor.ts";
import { loadModel } from "../src/graph/load_model.ts";
import type { Model } from "../src/graph/model.ts";
import { readNpz } from "../src/nnef/npz.ts";
import { writeTar } from "../src/nnef/tar.ts";
import { memorySource } from "../src/storage/memory_source.ts";
import { dequantizeQ40 } from "../src/nnef/q40.ts";
import { decodeTensor } from "../src/nnef/tensor_decode.ts";
import { readTensorFile } from "../src/nnef/tensor_file.ts";
import type { DType } from "../src/tensor/dtype.ts";
import { shapeToString } from "../src/tensor/dim.ts";
import { type Tensor, tensor } from "../src/tensor/tensor.ts";

const CASES = new URL("../../shared/fixtures/tract-nnef-cases/", import.meta.url).pathname;

type Approx = "exact" | "close" | "approximate" | "very";

/** tract `Approximation::atol_rtol_outliers` (tensor.rs) for the item type of the result. */
function tolerance(approx: Approx, dtype: DType): [number, number] {
  if (approx === "exact") return [0, 0];
  if (approx === "very") return [5e-2, 1e-2];
  if (dtype === "f16") return approx === "close" ? [1e-3, 1e-3] : [1e-3, 5e-3];
  return approx === "close" ? [1e-7, 1e-7] : [1e-4, 5e-4];
}

/** tract `Tensor::close_enough`: `|found - expected| <= atol + rtol * |expected|` in f32. */
function assertClose(found: Tensor, expected: Tensor, approx: Approx, where: string): void {
  assert.deepEqual(found.shape, expected.shape, `${where}: shape`);
  const [atol, rtol] = tolerance(approx, found.dtype);
  const a = found.data as Float32Array | Float64Array | Uint8Array;
  const b = expected.data as Float32Array | Float64Array | Uint8Array;
  for (let i = 0; i < b.length; i++) {
    const x = Math.fround(a[i]!);
    const y = Math.fround(b[i]!);
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    const bound = Math.fround(atol) + Math.fround(rtol) * Math.abs(y);
    if (!(Math.abs(x - y) <= bound)) {
      assert.fail(
        `${where}: item ${i} is ${x}, expected ${y} (|diff| ${
          Math.abs(x - y)
        } > ${bound}, ${approx})`,
      );
    }
  }
}

/** Seeded uniform values in [lo, hi) (mulberry32), so every run sees the same inputs. */
function random(dtype: DType, shape: readonly number[], seed: number, lo = -1, hi = 1): Tensor {
  const t = tensor(dtype, shape);
  const data = t.data as Float32Array | Float64Array;
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let r = Math.imul(s ^ (s >>> 15), 1 | s);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    const u = ((r ^ (r >>> 14)) >>> 0) / 4294967296;
    data[i] = dtype === "f32" ? lo + u * (hi - lo) : Math.floor(lo + u * (hi - lo));
  }
  return t;
}

function values(t: Tensor): number[] {
  return Array.from(t.data as Float32Array | Float64Array | Uint8Array);
}

function f32(shape: readonly number[], items: ArrayLike<number>): Tensor {
  return tensor("f32", shape, Float32Array.from(items));
}

/** Loads a case's model: a folder, a `.tgz`, or a bare graph file (the `expected` graphs). */
async function load(path: string): Promise<Model> {
  const info = await Deno.stat(path);
  if (!info.isFile || /\.(tgz|tar)$/.test(path)) return await loadModel(path);
  const tar = writeTar([{ name: "graph.nnef", data: await Deno.readFile(path) }]);
  return await loadModel(memorySource(tar, path));
}

function run(model: Model, inputs: Record<string, Tensor>): Map<string, Tensor> {
  return new Executor(model).run(new Map(Object.entries(inputs)));
}

/** Case folders some test runs or refuses. */
const COVERED = new Set<string>();

/** A test of the case folders `dirs` (a folder, or a folder/model inside one). */
function caseTest(dirs: readonly string[], name: string, fn: () => void | Promise<void>): void {
  for (const dir of dirs) COVERED.add(dir);
  Deno.test(name, fn);
}

/** Cases run from their `io.npz`: inputs by graph input name, every graph output compared. */
const BUNDLE_CASES: { dir: string; model?: string; approx: Approx }[] = [
  { dir: "sdpa/simple-causal-f32", approx: "close" },
  { dir: "sdpa/simple-f16", approx: "approximate" },
  { dir: "sdpa/simple-non-causal-f32", approx: "close" },
  { dir: "sdpa/simple-scale-f32", approx: "close" },
  { dir: "sdpa/simple-grouped-query-att-f32", model: "model.nnef.tgz", approx: "close" },
  { dir: "uniform-mul", approx: "close" },
  { dir: "uniform-mul", model: "expected", approx: "close" },
  { dir: "sign-abs-integers", approx: "close" },
  { dir: "test_all_reduce", model: "model.nnef.tgz", approx: "close" },
  { dir: "test_any_reduce", model: "model.nnef.tgz", approx: "close" },
  { dir: "fixed_roll", approx: "close" },
];

for (const c of BUNDLE_CASES) {
  const label = c.model === undefined ? c.dir : `${c.dir}/${c.model}`;
  caseTest([c.dir], `tract case ${label} reproduces io.npz (${c.approx})`, async () => {
    const model = await load(`${CASES}${c.dir}/${c.model ?? ""}`);
    const bundle = await readNpz(await Deno.readFile(`${CASES}${c.dir}/io.npz`), "io.npz");
    const inputs = Object.fromEntries([...bundle].filter(([name]) => model.input(name)));
    assert.equal(Object.keys(inputs).length, model.inputs.length);
    const outputs = run(model, inputs);
    for (const [name, found] of outputs) {
      const expected = bundle.get(name);
      assert.ok(expected !== undefined, `${label}: io.npz has no '${name}'`);
      assertClose(found, expected, c.approx, `${label}:${name}`);
    }
  });
}

caseTest(["cmp-operators"], "tract case cmp-operators compares with a scalar", async () => {
  const model = await load(`${CASES}cmp-operators`);
  const input = f32([4], [0.25, 0.5, 0.75, -1]);
  const out = run(model, { input });
  const x = values(input);
  const expect = {
    lt: x.map((v) => v < 0.5),
    le: x.map((v) => v <= 0.5),
    gt: x.map((v) => v > 0.5),
    ge: x.map((v) => v >= 0.5),
    eq: x.map((v) => v === 0.5),
    ne: x.map((v) => v !== 0.5),
  };
  for (const [name, want] of Object.entries(expect)) {
    const found = out.get(name)!;
    assert.equal(found.dtype, "bool", name);
    assert.deepEqual(values(found), want.map(Number), name);
  }
});

caseTest(["tdim-cmp"], "tract case tdim-cmp compares a range with itself plus one", async () => {
  const model = await load(`${CASES}tdim-cmp`);
  const out = run(model, { input_0: random("i64", [1, 6], 1, 0, 10) }).get("v90")!;
  assert.equal(out.dtype, "bool");
  assert.deepEqual(out.shape, [6]);
  assert.deepEqual(values(out), [1, 1, 1, 1, 1, 1]);
});

caseTest(
  ["gather-elements-last-axis"],
  "tract case gather-elements-last-axis: both spellings agree",
  async () => {
    const model = await load(`${CASES}gather-elements-last-axis`);
    const mismatch = run(model, { data: random("f32", [2, 3, 8], 2) }).get("mismatch")!;
    assert.deepEqual(mismatch.shape, [1, 1, 1]);
    assert.deepEqual(values(mismatch), [0]);
  },
);

caseTest(["pow-const"], "tract case pow-const raises to a constant power", async () => {
  const model = await load(`${CASES}pow-const`);
  const input = random("f32", [4], 3, 0.1, 3);
  const found = run(model, { input }).get("output")!;
  const want = values(input).map((x) => Math.pow(x, Math.fround(2.3333)));
  assertClose(found, f32([4], want), "close", "pow-const");
});

caseTest(
  ["dyn_slice"],
  "tract case dyn_slice keeps the first half of the streaming axis",
  async () => {
    const model = await load(`${CASES}dyn_slice`);
    for (const s of [7, 8, 2]) {
      const input = random("f32", [3, 1, s], 4 + s);
      const found = run(model, { input_0: input }).get("output_0")!;
      const half = Math.trunc(s / 2);
      const x = values(input);
      const want: number[] = [];
      for (let r = 0; r < 3; r++) want.push(...x.slice(r * s, r * s + half));
      assertClose(found, f32([3, 1, half], want), "exact", `dyn_slice S=${s}`);
    }
  },
);

caseTest(
  ["reshape_with_bc"],
  "tract case reshape_with_bc doubles through two reshapes",
  async () => {
    const model = await load(`${CASES}reshape_with_bc`);
    const a = random("f32", [3, 2], 6);
    const found = run(model, { a }).get("o")!;
    assertClose(found, f32([3, 2], values(a).map((x) => x * 2)), "exact", "reshape_with_bc");
  },
);

caseTest(
  ["q40_linear_followed_slice"],
  "tract case q40_linear_followed_slice multiplies two halves of a Q4_0 linear",
  async () => {
    const model = await load(`${CASES}q40_linear_followed_slice`);
    const input = random("f32", [10, 96], 8);
    const found = run(model, { input_0: input }).get("output_0")!;
    const file = readTensorFile(
      await Deno.readFile(`${CASES}q40_linear_followed_slice/linear__var0_q4_0.dat`),
      "linear__var0_q4_0.dat",
    );
    const w = decodeTensor(file, [16, 96]);
    const weights = w.dtype === "q40"
      ? dequantizeQ40(w.data as Uint8Array, 16 * 96)
      : (w.data as Float32Array); // (16, 96)
    const x = values(input); // (10, 96)
    const want: number[] = [];
    for (let r = 0; r < 10; r++) {
      const y: number[] = [];
      for (let o = 0; o < 16; o++) {
        let acc = 0;
        for (let k = 0; k < 96; k++) acc += x[r * 96 + k]! * weights[o * 96 + k]!;
        y.push(acc);
      }
      for (let o = 0; o < 8; o++) want.push(y[o]! * y[o + 8]!);
    }
    assertClose(found, f32([10, 8], want), "approximate", "q40_linear_followed_slice");
  },
);

caseTest(
  ["copy-identity", "conv-with-batch", "slice-over-slice-optim-loop"],
  "tract cases copy-identity, conv-with-batch and slice-over-slice-optim-loop run",
  async () => {
    const input = random("f32", [1, 4], 11);
    assertClose(
      run(await load(`${CASES}copy-identity`), { input }).get("output")!,
      input,
      "exact",
      "copy",
    );
    const batch = random("f32", [2, 1, 3], 12);
    const linear = run(await load(`${CASES}conv-with-batch`), { input_0: batch }).get("output_0")!;
    assertClose(linear, batch, "exact", "conv-with-batch");
    const square = f32([2, 2], [1, 2, 3, 4]);
    const parts = run(await load(`${CASES}slice-over-slice-optim-loop`), { input: square });
    assert.deepEqual(["o00", "o01", "o10", "o11"].map((n) => values(parts.get(n)!)), [
      [1],
      [2],
      [3],
      [
        4,
      ],
    ]);
  },
);

caseTest(
  ["dyn_slice"],
  "tract case dyn_slice with S=1 gives an empty slice: only a constant end <= 0 counts from the end",
  async () => {
    const model = await load(`${CASES}dyn_slice`);
    const found = run(model, { input_0: random("f32", [3, 1, 1], 13) }).get("output_0")!;
    assert.deepEqual(found.shape, [3, 1, 0]);
  },
);

caseTest(["reshape"], "tract case reshape flattens a nested shape literal", async () => {
  const model = await load(`${CASES}reshape`);
  const input = random("i64", [3, 1, 2], 5, -50, 50);
  const found = run(model, { input_0: input }).get("output_0")!;
  assert.deepEqual(found.shape, [1, 1, 2, 3]);
  assert.deepEqual(values(found), values(input));
});

caseTest(
  ["variable-in-fragment"],
  "tract case variable-in-fragment loads, ignoring named arguments the op does not read",
  async () => {
    // In tract the fragment's `external` is a second graph input; its label is never read.
    const model = await load(`${CASES}variable-in-fragment`);
    assert.equal(model.inputs.length, 2);
    const inputs = Object.fromEntries(
      model.inputs.map((io, i) => [io.name, random("f32", [1, 2, 3], 14 + i)]),
    );
    const inner = model.inputs.find((io) => io.name !== "input")!;
    const found = run(model, inputs).get("output")!;
    assertClose(found, inputs[inner.name]!, "exact", "variable-in-fragment");
  },
);

function softmaxLast(x: readonly number[], rows: number, n: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = x.slice(r * n, r * n + n);
    const max = Math.max(...row);
    const e = row.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    out.push(...e.map((v) => v / sum));
  }
  return out;
}

for (const name of ["softmax-change-axis", "softmax-change-axis-1"]) {
  caseTest(
    [`softmax/${name}`],
    `tract case softmax/${name} equals its expected rewrite and a reference`,
    async () => {
      const model = await load(`${CASES}softmax/${name}`);
      const rewritten = await load(`${CASES}softmax/${name}/expected`);
      const input = random("f32", [2, 1, 3], 9);
      const found = run(model, { input }).get("output")!;
      const again = run(rewritten, { input }).get("output")!;
      assertClose(found, again, "close", `softmax/${name} vs expected`);
      assertClose(found, f32([2, 1, 3], softmaxLast(values(input), 2, 3)), "close", name);
    },
  );
}

caseTest(["parallel-ops"], "tract case parallel-ops matches a float64 reference", async () => {
  const model = await load(`${CASES}parallel-ops`);
  const bundle = await readNpz(await Deno.readFile(`${CASES}parallel-ops/io.npz`), "io.npz");
  const input = bundle.get("input")!; // (1, 512, 768)
  const found = run(model, { input }).get("output")!;
  const x = values(input);
  const b = softmaxLast(x, 512, 768);
  const want = new Float32Array(x.length);
  for (let r = 0; r < 512; r++) {
    let s = 0;
    for (let k = 0; k < 768; k++) s += Math.tanh(x[r * 768 + k]!) * b[r * 768 + k]!;
    for (let k = 0; k < 768; k++) {
      const i = r * 768 + k;
      want[i] = (Math.tanh(x[i]!) * b[i]! + s) * b[i]!;
    }
  }
  assertClose(found, f32([1, 512, 768], want), "approximate", "parallel-ops");
});

caseTest(
  ["parallel-bin"],
  "tract case parallel-bin matches a reference rounded to f32 after each op",
  async () => {
    const model = await load(`${CASES}parallel-bin`);
    const input = random("f32", [1, 256, 768], 10);
    const found = run(model, { input }).get("output")!;
    const x = values(input); // (256, 768)
    const sums = (v: ArrayLike<number>, rows: number, cols: number) => {
      const row = new Float64Array(rows);
      const col = new Float64Array(cols);
      for (let r = 0; r < rows; r++) {
        for (let k = 0; k < cols; k++) {
          row[r]! += v[r * cols + k]!;
          col[k]! += v[r * cols + k]!;
        }
      }
      return { row: Float32Array.from(row), col: Float32Array.from(col) };
    };
    const f = Math.fround;
    const first = sums(x, 256, 768);
    const c = new Float32Array(x.length); // (256, 768) then (8, 24576)
    for (let i = 0; i < x.length; i++) {
      const a = f(x[i]! + first.row[Math.floor(i / 768)]!);
      c[i] = f(f(a * first.col[i % 768]!) * f(Math.tanh(x[i]!)));
    }
    const wide = sums(c, 8, 24576);
    const want = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      want[i] = f(c[i]! + wide.row[Math.floor(i / 24576)]!) * wide.col[i % 24576]!;
    }
    assertClose(found, f32([1, 256, 768], want), "approximate", "parallel-bin");
  },
);

caseTest(
  ["parallel-matmul"],
  "tract case parallel-matmul matches a float64 reference",
  async () => {
    const model = await load(`${CASES}parallel-matmul`);
    const shapes: Record<string, [number[], number[]]> = {
      skew: [[128, 768], [768, 768]],
      sq: [[512, 512], [512, 512]],
      thin: [[1024, 256], [256, 128]],
      batch: [[4, 256, 256], [4, 256, 384]],
    };
    const inputs: Record<string, Tensor> = {};
    let seed = 20;
    for (const [name, [a, b]] of Object.entries(shapes)) {
      inputs[`${name}_a`] = random("f32", a, seed++);
      inputs[`${name}_b`] = random("f32", b, seed++);
    }
    const outputs = run(model, inputs);
    for (const [name, [a, b]] of Object.entries(shapes)) {
      const batch = a.length === 3 ? a[0]! : 1;
      const [m, k] = a.slice(-2) as [number, number];
      const n = b.at(-1)!;
      const x = values(inputs[`${name}_a`]!); // (batch, m, k)
      const y = values(inputs[`${name}_b`]!); // (batch, k, n)
      const want = new Float32Array(batch * m * n);
      const acc = new Float64Array(n);
      for (let p = 0; p < batch; p++) {
        for (let i = 0; i < m; i++) {
          acc.fill(0);
          for (let j = 0; j < k; j++) {
            const xv = x[(p * m + i) * k + j]!;
            const yRow = (p * k + j) * n;
            for (let c = 0; c < n; c++) acc[c]! += xv * y[yRow + c]!;
          }
          want.set(acc, (p * m + i) * n);
        }
      }
      const shape = batch === 1 && a.length === 2 ? [m, n] : [batch, m, n];
      assertClose(outputs.get(name)!, f32(shape, want), "approximate", `parallel-matmul ${name}`);
    }
  },
);

/**
 * Cases outside text models: each must fail with "unsupported operator" (or, for quantized
 * graphs, an "unsupported" quantization error) rather than give a wrong answer.
 */
const NON_TEXT_CASES: { dir: string; model?: string; reason: string }[] = [
  { dir: "conv-bias", reason: "conv (convolutional networks)" },
  ...[
    "conv2d",
    "conv_base_kernel1",
    "conv_base_kernel3",
    "conv_base_kernel9",
    "conv_dilation2",
    "conv_dilation4",
    "conv_dilation8",
    "conv_groups2",
    "conv_groups4",
    "conv_insize128",
    "conv_insize64",
    "conv_stride2",
    "conv_stride3",
  ].map((c) => ({
    dir: `conv-q40/${c}`,
    model: "model.nnef.tgz",
    reason: "conv with Q4_0 kernels",
  })),
  { dir: "conv-then-shape-of-mask", reason: "conv, pad, tract_core_broadcast; pulsed streaming" },
  { dir: "debox/debox_base", reason: "debox (signal processing)" },
  { dir: "debox/debox_high_dim", reason: "debox (signal processing)" },
  { dir: "export-scan-state", reason: "tract_core_scan (recurrent loops)" },
  { dir: "grid_sample/grid_sample_identity", reason: "tract_core_grid_sample (vision)" },
  { dir: "gru-epilogue", reason: "tract_core_scan, tract_core_gru_epilogue (GRU)" },
  { dir: "non_zero_two_nodes", reason: "tract_onnx_non_zero (ONNX extension)" },
  { dir: "pool-padding", reason: "max_pool (vision)" },
  { dir: "pulse-sync-inputs-multi-delay", reason: "conv; pulsed streaming" },
  {
    dir: "qwen35-recurrent/causal-conv1d-update",
    reason: "tract_transformers_causal_conv1d_update (Qwen3.5 linear attention)",
  },
  {
    dir: "qwen35-recurrent/gdn-recurrent",
    reason: "tract_transformers_gdn_recurrent (Qwen3.5 gated delta net)",
  },
  ...["core_resize_f16", "core_resize_linear", "core_resize_nearest", "core_resize_sizes"].map((
    c,
  ) => ({
    dir: `resize/${c}`,
    reason: "tract_core_resize (vision)",
  })),
  { dir: "resize/nearest_upsample", reason: "nearest_upsample (vision)" },
  { dir: "scan-body-stream-drift", reason: "tract_core_scan; pulsed streaming" },
  { dir: "scatter-nd-block", reason: "tract_core_scatter_nd" },
  { dir: "submodel", reason: "tract_core_submodel around a quantized u8 conv" },
  { dir: "test_manage_gru_states", model: "model.nnef.tgz", reason: "gru, tract_core_scan" },
  { dir: "test_stft_smaller_win", model: "model.nnef.tgz", reason: "tract_core_stft, pad (audio)" },
];

for (const c of NON_TEXT_CASES) {
  caseTest([c.dir], `tract case ${c.dir} is refused: ${c.reason}`, async () => {
    await assert.rejects(
      async () => {
        const model = await load(`${CASES}${c.dir}/${c.model ?? ""}`);
        const inputs = Object.fromEntries(
          model.inputs.map((io) => [io.name, random(io.fact.dtype, io.fact.shape as number[], 0)]),
        );
        run(model, inputs);
      },
      (e: Error) => {
        assert.match(e.message, /unsupported operator/i);
        return true;
      },
    );
  });
}

/** Graph quantization (`graph.quant`, u8/i8 tensors) belongs to non-LLM models too. */
const QUANTIZED_CASES: { dir: string; reason: string }[] = [
  { dir: "qmul", reason: "u8 zero-point quantized mul" },
  { dir: "copy-requant", reason: "u8 to i8 requantization" },
  { dir: "softmax/softmax-quant/model", reason: "u8 quantized softmax" },
];

for (const c of QUANTIZED_CASES) {
  caseTest(
    [c.dir],
    `tract case ${c.dir} is refused: ${c.reason} (graph.quant is unsupported)`,
    async () => {
      await assert.rejects(load(`${CASES}${c.dir}`), /unsupported/i);
    },
  );
}

caseTest(
  ["memory-arena"],
  "tract case memory-arena holds no graph: it needs a GPU and an external LLM",
  () => {
    const members = [...Deno.readDirSync(`${CASES}memory-arena`)].map((e) => e.name).sort();
    assert.deepEqual(members, ["expected.cuda.json", "expected.metal.json", "runme.sh"]);
  },
);

caseTest(
  ["slice-of-static-with-streaming-size"],
  "tract case slice-of-static-with-streaming-size adds a constant table sliced to the streaming length",
  async () => {
    const model = await load(`${CASES}slice-of-static-with-streaming-size`);
    assert.equal(shapeToString(model.outputs[0]!.fact.shape), "[broadcast(S,min(9999,S)), 1]");
    for (const s of [8, 4, 1]) {
      const input = random("f32", [s, 1], 30 + s);
      const found = run(model, { input }).get("output")!;
      const want = values(input).map((x) => Math.fround(x) + Math.fround(0.0001));
      assertClose(found, f32([s, 1], want), "exact", `slice-of-static S=${s}`);
    }
    const long = random("f32", [10000, 1], 40);
    assert.throws(
      () => run(model, { input: long }),
      /Cannot broadcast shapes \[10000, 1\] and \[9999, 1\]/,
    );
  },
);

Deno.test("every tract case folder is run or refused by a test above", () => {
  const folders: string[] = [];
  const walk = (dir: string) => {
    const entries = [...Deno.readDirSync(`${CASES}${dir}`)];
    if (entries.some((e) => e.name === "runme.sh")) folders.push(dir.replace(/\/$/, ""));
    for (const e of entries) if (e.isDirectory) walk(`${dir}${e.name}/`);
  };
  walk("");
  const covered = [...COVERED].map((dir) => dir.replace(/\/model$/, ""));
  assert.deepEqual(folders.filter((dir) => !covered.includes(dir)).sort(), []);
  assert.ok(folders.length >= 60, `only ${folders.length} case folders`);
});
