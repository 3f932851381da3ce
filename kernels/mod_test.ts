import assert from "node:assert/strict";
import { f16ToF32, f32ToF16, f32ToF16Normal, flushSubnormalF16 } from "../src/tensor/f16.ts";
import type { Task } from "./_job.ts";
import {
  type AttentionShape,
  type Kernels,
  type KernelTape,
  type KvItem,
  loadKernels,
  selfTest,
  WASM32_MAX_BYTES,
} from "./mod.ts";

/** Q4_0 x Q8_0 against f32 weights/activations: the activation rounding, relative to |w| |x|. */
const Q8_ERROR_BUDGET = 0.01;
/** f32 kernels against an f64 reference, relative to the sum of |terms|. */
const F32_ERROR_BUDGET = 1e-5;
/** SIMD against its scalar twin when the SIMD build may fuse multiply-adds. */
const TWIN_ERROR_BUDGET = 1e-6;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 * 2 - 1;
  };
}

function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * scale);
}

/** Random Q4_0 blocks (n, k) and their dequantized values. */
function randomQ4(n: number, k: number, seed: number): { bytes: Uint8Array; values: Float64Array } {
  const r = rng(seed);
  const nb = n * k / 32;
  const bytes = new Uint8Array(nb * 18);
  const values = new Float64Array(n * k);
  for (let b = 0; b < nb; b++) {
    const h = f32ToF16(0.005 + 0.02 * Math.abs(r()));
    bytes[b * 18] = h & 255;
    bytes[b * 18 + 1] = h >> 8;
    const d = f16ToF32(h);
    for (let j = 0; j < 16; j++) {
      const q = Math.floor((r() + 1) * 128) & 255;
      bytes[b * 18 + 2 + j] = q;
      values[b * 32 + j] = ((q & 15) - 8) * d;
      values[b * 32 + j + 16] = ((q >> 4) - 8) * d;
    }
  }
  return { bytes, values };
}

function put(
  kernels: Kernels,
  data: Float32Array | Uint8Array | Uint16Array | Int32Array,
): number {
  const off = kernels.alloc(data.byteLength);
  kernels.u8(off, data.byteLength).set(
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  );
  return off;
}

function read(kernels: Kernels, off: number, n: number): Float32Array {
  return kernels.f32(off, n).slice();
}

function assertClose(
  actual: Float32Array,
  expected: ArrayLike<number>,
  tol: ArrayLike<number> | number,
  what: string,
) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    const t = typeof tol === "number" ? tol : tol[i]!;
    const err = Math.abs(actual[i]! - expected[i]!);
    if (!(err <= t)) {
      assert.fail(`${what}[${i}]: ${actual[i]} vs ${expected[i]} (error ${err} > ${t})`);
    }
  }
}

/** y (m, n) = x (m, k) @ W (n, k)^T in f64, with the sum of |terms| per output. */
function refMatmul(w: ArrayLike<number>, x: ArrayLike<number>, m: number, n: number, k: number) {
  const y = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let t = 0; t < m; t++) {
    for (let r = 0; r < n; r++) {
      let s = 0;
      let a = 0;
      for (let j = 0; j < k; j++) {
        const p = w[r * k + j]! * x[t * k + j]!;
        s += p;
        a += Math.abs(p);
      }
      y[t * n + r] = s;
      mag[t * n + r] = a;
    }
  }
  return { y, mag };
}

function norms(v: ArrayLike<number>, rows: number, len: number): Float64Array {
  return Float64Array.from({ length: rows }, (_, i) => {
    let s = 0;
    for (let j = 0; j < len; j++) s += v[i * len + j]! ** 2;
    return Math.sqrt(s);
  });
}

async function withKernels(
  options: Parameters<typeof loadKernels>[0],
  body: (k: Kernels) => void | Promise<void>,
) {
  const kernels = await loadKernels(options);
  try {
    await body(kernels);
  } finally {
    kernels.close();
  }
}

function q4Case(kernels: Kernels, m: number, n: number, k: number, scalar: boolean) {
  const w = randomQ4(n, k, 11);
  const x = randomF32(m * k, 12);
  const wo = put(kernels, w.bytes);
  const xo = put(kernels, x);
  const xq = kernels.alloc(m * kernels.q8RowBytes(k));
  const y = kernels.alloc(m * n * 4);
  const ops = scalar ? kernels.scalar : kernels;
  ops.quantizeQ8_0(xo, xq, m, k);
  ops.matmulQ4_0Q8_0(wo, xq, y, m, n, k);
  const ggml = read(kernels, y, m * n);
  kernels.interleaveQ4_0Rows8(wo, n, k);
  ops.matmulQ4_0Q8_0(wo, xq, y, m, n, k, "rows8");
  assert.deepEqual(read(kernels, y, m * n), ggml, "rows8 layout changes the results");
  const out = {
    y: ggml,
    xq: kernels.u8(xq, m * kernels.q8RowBytes(k)).slice(),
    w,
    x,
  };
  kernels.reset();
  return out;
}

for (const variant of ["simd128", "relaxed"] as const) {
  Deno.test(`matmulQ4_0Q8_0 (${variant}) equals its scalar twin and the f32 reference within budget`, async () => {
    await withKernels({ threads: 1, variant }, (kernels) => {
      assert.equal(kernels.variant, variant);
      for (
        const [m, n, k] of [[1, 10, 96], [5, 13, 64], [4, 8, 256], [1, 27, 64], [
          19,
          37,
          96,
        ]] as const
      ) {
        const simd = q4Case(kernels, m, n, k, false);
        const twin = q4Case(kernels, m, n, k, true);
        assert.deepEqual(simd.xq, twin.xq, "quantized activations differ from the scalar twin");
        assert.deepEqual(simd.y, twin.y, "Q4_0 matmul differs from the scalar twin");
        const ref = refMatmul(simd.w.values, simd.x, m, n, k);
        const wn = norms(simd.w.values, n, k);
        const xn = norms(simd.x, m, k);
        const tol = Array.from(
          { length: m * n },
          (_, i) => Q8_ERROR_BUDGET * wn[i % n]! * xn[Math.floor(i / n)]!,
        );
        assertClose(simd.y, ref.y, tol, `q4 ${m}x${n}x${k}`);
      }
    });
  });

  Deno.test(`matmulF32 and matmulF16 (${variant}) match the scalar twin and the f64 reference`, async () => {
    await withKernels({ threads: 1, variant }, (kernels) => {
      for (const [m, n, k] of [[1, 9, 37], [3, 6, 64], [4, 5, 19]] as const) {
        const wf = randomF32(n * k, 21);
        const x = randomF32(m * k, 22);
        const wh = Uint16Array.from(wf, (v) => f32ToF16(v));
        const whf = Float64Array.from(wh, (h) => f16ToF32(h));
        const [wo, who, xo, y, ys] = [
          put(kernels, wf),
          put(kernels, wh),
          put(kernels, x),
          kernels.alloc(m * n * 4),
          kernels.alloc(m * n * 4),
        ];
        for (
          const [name, ref, run] of [
            [
              "f32",
              refMatmul(wf, x, m, n, k),
              (o: typeof kernels.scalar, out: number) => o.matmulF32(wo, xo, out, m, n, k),
            ],
            [
              "f16",
              refMatmul(whf, x, m, n, k),
              (o: typeof kernels.scalar, out: number) => o.matmulF16(who, xo, out, m, n, k),
            ],
          ] as const
        ) {
          run(kernels, y);
          run(kernels.scalar, ys);
          const got = read(kernels, y, m * n);
          assertClose(
            got,
            read(kernels, ys, m * n),
            Array.from(ref.mag, (a) => TWIN_ERROR_BUDGET * a + 1e-7),
            `${name} twin`,
          );
          assertClose(
            got,
            ref.y,
            Array.from(ref.mag, (a) => F32_ERROR_BUDGET * a + 1e-7),
            `${name} ref`,
          );
        }
        kernels.reset();
      }
    });
  });

  Deno.test(`elementwise kernels (${variant}) match the scalar twins and f64 references`, async () => {
    await withKernels({ threads: 1, variant }, (kernels) => {
      const m = 3;
      const d = 22;
      const x = randomF32(m * d, 31, 3);
      const w = randomF32(d, 32);
      const [xo, wo, y, ys] = [
        put(kernels, x),
        put(kernels, w),
        kernels.alloc(m * d * 4),
        kernels.alloc(m * d * 4),
      ];
      const check = (
        name: string,
        run: (o: typeof kernels.scalar, out: number) => void,
        ref: ArrayLike<number>,
      ) => {
        run(kernels, y);
        run(kernels.scalar, ys);
        const got = read(kernels, y, m * d);
        assertClose(
          got,
          read(kernels, ys, m * d),
          Array.from(ref, (v) => TWIN_ERROR_BUDGET * (Math.abs(v) + 1)),
          `${name} twin`,
        );
        assertClose(
          got,
          ref,
          Array.from(ref, (v) => F32_ERROR_BUDGET * (Math.abs(v) + 1)),
          `${name} ref`,
        );
      };

      const rms = new Float64Array(m * d);
      for (let t = 0; t < m; t++) {
        let ss = 0;
        for (let j = 0; j < d; j++) ss += x[t * d + j]! ** 2;
        const r = 1 / Math.sqrt(ss / d + 1e-5);
        for (let j = 0; j < d; j++) rms[t * d + j] = x[t * d + j]! * r * w[j]!;
      }
      check("rmsNorm", (o, out) => o.rmsNorm(xo, wo, out, m, d, 1e-5), rms);

      const sm = new Float64Array(m * d);
      for (let t = 0; t < m; t++) {
        const row = Array.from(x.subarray(t * d, t * d + d));
        const mx = Math.max(...row);
        const s = row.reduce((a, v) => a + Math.exp(v - mx), 0);
        for (let j = 0; j < d; j++) sm[t * d + j] = Math.exp(row[j]! - mx) / s;
      }
      check("softmax", (o, out) => o.softmax(xo, out, m, d), sm);

      // A sampler's weights against the row's largest item: the same bits and sum in the twin.
      const mx = Math.max(...x);
      const weights = Float64Array.from(x, (v) => Math.exp((v - mx) * 0.7));
      const totals = [kernels.alloc(8, 8), kernels.alloc(8, 8)];
      check("weighLogits", (o, out) => {
        o.weighLogits(xo, out, m * d, Math.fround(mx), Math.fround(0.7), totals[+(o !== kernels)]!);
      }, weights);
      const [total, twinTotal] = totals.map((t) =>
        new Float64Array(kernels.memory.buffer, t, 1)[0]!
      );
      assert.deepEqual(read(kernels, y, m * d), read(kernels, ys, m * d));
      assert.equal(total, twinTotal);
      const f32Sum = read(kernels, y, m * d).reduce((a, v) => a + v, 0);
      assert.ok(Math.abs(total! - f32Sum) < 1e-12 * f32Sum, `sum ${total} vs ${f32Sum}`);

      const b = randomF32(m * d, 33);
      const bo = put(kernels, b);
      const silu = Float64Array.from(x, (a, i) => a / (1 + Math.exp(-a)) * b[i]!);
      check("siluGate", (o, out) => o.siluGate(xo, bo, out, m * d), silu);
      // The add gives the bits of the TS loop it stands for (one f32 rounding per item).
      const sum = Float32Array.from(x, (a, i) => a + b[i]!);
      check("add", (o, out) => o.add(xo, bo, out, m * d), sum);
      assert.deepEqual(read(kernels, y, m * d), sum);

      const nHeads = 1;
      const headDim = d;
      const angles = Float64Array.from(
        { length: m * headDim },
        (_, i) => (i % headDim % (headDim / 2)) * 0.3 + Math.floor(i / headDim),
      );
      const cos = Float32Array.from(angles, Math.cos);
      const sin = Float32Array.from(angles, Math.sin);
      const [co, so] = [put(kernels, cos), put(kernels, sin)];
      const half = headDim / 2;
      const rope = Float64Array.from(x, (v, i) => {
        const j = i % headDim;
        const base = i - j;
        const rot = j < half ? -x[base + j + half]! : x[base + j - half]!;
        return v * cos[i]! + rot * sin[i]!;
      });
      check(
        "ropeRotateHalf",
        (o, out) => o.ropeRotateHalf(xo, co, so, out, m, nHeads, headDim),
        rope,
      );
    });
  });

  Deno.test(`attention (${variant}) matches its scalar twin and an f64 reference with GQA and a causal mask`, async () => {
    await withKernels({ threads: 1, variant }, (kernels) => {
      for (const s of attentionShapes()) {
        const { got, twin, ref } = attentionCase(kernels, s);
        assertClose(got, twin, TWIN_ERROR_BUDGET, "attention twin");
        assertClose(got, ref, F32_ERROR_BUDGET * 10, "attention ref");
        kernels.reset();
      }
    });
  });
}

/** (m, n, k) of the row-independence cases: one-token and tile paths, partial row groups, token tiles, a split job. */
const ROW_CASES = [
  [2, 37, 96],
  [3, 70, 256],
  [5, 9, 64],
  [8, 64, 128],
  [17, 24, 96],
  [33, 13, 64],
  [9, 75, 512],
  // A long row (65 blocks), a full token tile and three tokens more.
  [19, 21, 2080],
] as const;

/** Rows of `y` (m, n), each compared bit for bit with `single(t)`, its m = 1 result. */
function assertRowsMatchSingle(
  y: Float32Array,
  n: number,
  single: (t: number) => Float32Array,
  what: string,
) {
  const m = y.length / n;
  for (let t = 0; t < m; t++) {
    const one = single(t);
    for (let j = 0; j < n; j++) {
      if (!Object.is(y[t * n + j], one[j])) {
        assert.fail(
          `${what}: row ${t} of ${m}, output ${j}: ${y[t * n + j]} in the batch, ${one[j]} alone`,
        );
      }
    }
  }
}

for (const variant of ["simd128", "relaxed"] as const) {
  Deno.test(`matmuls (${variant}) give each row the bits of its m = 1 result, any m, 1 and 2 threads`, async () => {
    for (const threads of [1, 2]) {
      await withKernels({ threads, variant }, (kernels) => {
        const r = rng(71 + threads);
        for (const [m, n, k] of ROW_CASES) {
          const w = randomQ4(n, k, 72 + m);
          const wf = randomF32(n * k, 73 + m);
          const wh = Uint16Array.from(wf, (v) => f32ToF16(v));
          const x = Float32Array.from({ length: m * k }, () => r() * (1 + 4 * Math.abs(r())));
          const [wo, w8, wfo, who, xo, xq, y, y1] = [
            put(kernels, w.bytes),
            put(kernels, w.bytes),
            put(kernels, wf),
            put(kernels, wh),
            put(kernels, x),
            kernels.alloc(m * kernels.q8RowBytes(k)),
            kernels.alloc(m * n * 4),
            kernels.alloc(n * 4),
          ];
          kernels.interleaveQ4_0Rows8(w8, n, k);
          kernels.quantizeQ8_0(xo, xq, m, k);
          const rb = kernels.q8RowBytes(k);
          const cases = [
            [
              "Q4_0 ggml",
              (mm: number, _: number, xqi: number, out: number) =>
                kernels.matmulQ4_0Q8_0(wo, xqi, out, mm, n, k),
            ],
            [
              "Q4_0 rows8",
              (mm: number, _: number, xqi: number, out: number) =>
                kernels.matmulQ4_0Q8_0(w8, xqi, out, mm, n, k, "rows8"),
            ],
            [
              "f32",
              (mm: number, xi: number, _: number, out: number) =>
                kernels.matmulF32(wfo, xi, out, mm, n, k),
            ],
            [
              "f16",
              (mm: number, xi: number, _: number, out: number) =>
                kernels.matmulF16(who, xi, out, mm, n, k),
            ],
          ] as const;
          for (const [name, run] of cases) {
            run(m, xo, xq, y);
            assertRowsMatchSingle(read(kernels, y, m * n), n, (t) => {
              run(1, xo + t * k * 4, xq + t * rb, y1);
              return read(kernels, y1, n);
            }, `${name} ${m}x${n}x${k}, ${threads} threads`);
          }
          kernels.reset();
        }
      });
    }
  });

  Deno.test(`attention (${variant}) gives each query row the bits of its m = 1 result, 1 and 2 threads`, async () => {
    for (const threads of [1, 2]) {
      await withKernels({ threads, variant }, (kernels) => {
        for (
          const s of [...attentionShapes(), {
            m: 7,
            nHeads: 8,
            nKvHeads: 2,
            headDim: 16,
            capacity: 40,
            kvLen: 37,
            qPos0: 30,
            scale: 0.25,
          }]
        ) {
          const qLen = s.nHeads * s.headDim;
          const cLen = s.nKvHeads * s.capacity * s.headDim;
          const [qo, ko, vo, out, one] = [
            put(kernels, randomF32(s.m * qLen, 81, 2)),
            put(kernels, randomF32(cLen, 82, 2)),
            put(kernels, randomF32(cLen, 83)),
            kernels.alloc(s.m * qLen * 4),
            kernels.alloc(qLen * 4),
          ];
          kernels.attention(qo, ko, vo, out, s);
          assertRowsMatchSingle(read(kernels, out, s.m * qLen), qLen, (t) => {
            const qPos0 = s.qPos0 + t;
            const kvLen = Math.min(s.kvLen, qPos0 + 1);
            kernels.attention(qo + t * qLen * 4, ko, vo, one, { ...s, m: 1, qPos0, kvLen });
            return read(kernels, one, qLen);
          }, `attention m ${s.m}, ${threads} threads`);
          kernels.reset();
        }
      });
    }
  });
}

function attentionShapes(): AttentionShape[] {
  return [
    { m: 1, nHeads: 4, nKvHeads: 2, headDim: 20, capacity: 16, kvLen: 11, qPos0: 10, scale: 0.3 },
    { m: 5, nHeads: 6, nKvHeads: 3, headDim: 32, capacity: 12, kvLen: 9, qPos0: 4, scale: 0.2 },
    { m: 3, nHeads: 2, nKvHeads: 2, headDim: 7, capacity: 8, kvLen: 3, qPos0: 0, scale: 0.5 },
    // More query rows than attention_paged computes together (16): two groups of rows.
    { m: 19, nHeads: 6, nKvHeads: 2, headDim: 7, capacity: 32, kvLen: 26, qPos0: 7, scale: 0.4 },
    { m: 1, nHeads: 3, nKvHeads: 3, headDim: 40, capacity: 24, kvLen: 21, qPos0: 20, scale: 0.3 },
    // One row over nine full blocks of 8 and part of a tenth: the paged f16 kernel reads the
    // keys of eight of them as four streams, the rest block by block.
    { m: 1, nHeads: 4, nKvHeads: 2, headDim: 24, capacity: 80, kvLen: 75, qPos0: 74, scale: 0.25 },
    // The same with a head of 20 items, not a multiple of 8: block by block, no key streams.
    { m: 1, nHeads: 2, nKvHeads: 1, headDim: 20, capacity: 72, kvLen: 70, qPos0: 69, scale: 0.25 },
    // More query items (36 heads of 128) than the key streams scale in their stack buffer
    // (4096): the streams read the queries as they are.
    { m: 1, nHeads: 36, nKvHeads: 4, headDim: 128, capacity: 40, kvLen: 37, qPos0: 36, scale: 0.1 },
    {
      m: 4,
      nHeads: 8,
      nKvHeads: 2,
      headDim: 64,
      capacity: 160,
      kvLen: 150,
      qPos0: 146,
      scale: 0.125,
    },
  ];
}

function attentionCase(kernels: Kernels, s: AttentionShape) {
  const qLen = s.m * s.nHeads * s.headDim;
  const cLen = s.nKvHeads * s.capacity * s.headDim;
  const q = randomF32(qLen, 41, 2);
  const kc = randomF32(cLen, 42, 2);
  const vc = randomF32(cLen, 43);
  const [qo, ko, vo, out, outs] = [
    put(kernels, q),
    put(kernels, kc),
    put(kernels, vc),
    kernels.alloc(qLen * 4),
    kernels.alloc(qLen * 4),
  ];
  kernels.attention(qo, ko, vo, out, s);
  kernels.scalar.attention(qo, ko, vo, outs, s);
  const ref = new Float64Array(qLen);
  const group = s.nHeads / s.nKvHeads;
  for (let t = 0; t < s.m; t++) {
    const len = Math.min(s.kvLen, s.qPos0 + t + 1);
    for (let h = 0; h < s.nHeads; h++) {
      const kvh = Math.floor(h / group);
      const qo2 = (t * s.nHeads + h) * s.headDim;
      const sc = Array.from({ length: len }, (_, j) => {
        let a = 0;
        for (let i = 0; i < s.headDim; i++) {
          a += q[qo2 + i]! * kc[(kvh * s.capacity + j) * s.headDim + i]!;
        }
        return a * s.scale;
      });
      const mx = Math.max(...sc);
      const sum = sc.reduce((a, v) => a + Math.exp(v - mx), 0);
      for (let i = 0; i < s.headDim; i++) {
        let a = 0;
        for (let j = 0; j < len; j++) {
          a += Math.exp(sc[j]! - mx) / sum * vc[(kvh * s.capacity + j) * s.headDim + i]!;
        }
        ref[qo2 + i] = a;
      }
    }
  }
  return { got: read(kernels, out, qLen), twin: read(kernels, outs, qLen), ref };
}

/** A paged pool region for `positions` of every kv head, blocks in reverse order (ids 1..blocks of blocks + 2). */
function pagedCase(kernels: Kernels, kv: KvCase, positions: number, seed: number) {
  const blocks = Math.ceil(positions / kv.blockSize);
  const ids = Int32Array.from({ length: blocks }, (_, b) => blocks - b);
  const bytes = kv.item === "f16" ? 2 : 4;
  const blockBytes = kv.nKvHeads * kv.blockSize * kv.headDim * bytes;
  // Runs of `kv.runHeads` kv heads, blocks + 2 blocks each (the table names 1..=blocks).
  const runHeads = kv.runHeads ?? 0;
  const runStride = (blocks + 2) * runHeads * kv.blockSize * kv.headDim * bytes;
  const regionBytes = runHeads > 0
    ? Math.ceil(kv.nKvHeads / runHeads) * runStride
    : (blocks + 2) * blockBytes;
  // (nKvHeads, positions, headDim) f32 source, and the values a contiguous cache would hold.
  const src = randomF32(kv.nKvHeads * positions * kv.headDim, seed, 2);
  const held = kv.item === "f16" ? Float32Array.from(src, (v) => f16ToF32(f32ToF16Normal(v))) : src;
  const srcOff = put(kernels, src);
  const table = put(kernels, ids);
  const base = kernels.alloc(regionBytes);
  kernels.u8(base, regionBytes).fill(0xa5);
  kernels.storeKvPaged(
    srcOff,
    positions * kv.headDim,
    kv.headDim,
    base,
    table,
    kv.blockSize,
    kv.item,
    kv.nKvHeads,
    kv.headDim,
    0,
    positions,
    runHeads,
    runStride,
  );
  return { ids, table, base, held, runHeads, runStride };
}

interface KvCase {
  nKvHeads: number;
  headDim: number;
  blockSize: number;
  item: KvItem;
  /** Kv heads per run of blocks (default: all, one run). */
  runHeads?: number;
}

for (const variant of ["simd128", "relaxed"] as const) {
  Deno.test(`storeKvPaged (${variant}) writes f16 rounded to nearest even (subnormal halves as zero) and f32 as is, from either source layout`, async () => {
    await withKernels({ threads: 1, variant }, (kernels) => {
      const [nKv, hd, bs, S, pos0] = [3, 13, 4, 6, 5];
      const edge = [65504, 65519.99, 65520, -1e9, NaN, Infinity, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
      // Subnormal halves (stored as zero), and one rounding up to the least normal half.
      const tiny = [2 ** -25, 2 ** -25 * 1.0001, 2 ** -24 * 1.5, -(2 ** -14) * 0.75, 6e-5];
      tiny.push(2 ** -14 * (1 - 2 ** -13));
      const values = randomF32(nKv * S * hd, 111, 3);
      values.set([...edge, ...tiny], 7);
      const ids = Int32Array.from([7, 7, 2, 0]);
      const table = put(kernels, ids);
      for (const item of ["f16", "f32"] as const) {
        const bytes = item === "f16" ? 2 : 4;
        const regionBytes = 8 * nKv * bs * hd * bytes;
        for (const layout of ["heads", "rows"] as const) {
          // (nKv, S, hd) or (S, nKv, hd).
          const [hs, rs] = layout === "heads" ? [S * hd, hd] : [hd, nKv * hd];
          const src = put(kernels, values);
          const [a, b] = [kernels.alloc(regionBytes), kernels.alloc(regionBytes)];
          kernels.u8(a, 2 * regionBytes).fill(0);
          kernels.storeKvPaged(src, hs, rs, a, table, bs, item, nKv, hd, pos0, S);
          kernels.scalar.storeKvPaged(src, hs, rs, b, table, bs, item, nKv, hd, pos0, S);
          const got = kernels.u8(a, regionBytes).slice();
          assert.deepEqual(
            got,
            kernels.u8(b, regionBytes),
            `${item} ${layout}: differs from the scalar twin`,
          );
          const view = new DataView(got.buffer);
          const touched = new Set<number>();
          for (let s = 0; s < S; s++) {
            const p = pos0 + s;
            for (let g = 0; g < nKv; g++) {
              const row = ((ids[Math.floor(p / bs)]! * nKv + g) * bs + p % bs) * hd * bytes;
              for (let i = 0; i < hd; i++) {
                const v = values[g * hs + s * rs + i]!;
                const o = row + i * bytes;
                touched.add(o);
                if (item === "f16") {
                  const want = f32ToF16Normal(v);
                  assert.equal(view.getUint16(o, true), want, `f16 of ${v} (${layout})`);
                  if (typeof Float16Array === "function" && !Number.isNaN(v)) {
                    assert.equal(
                      view.getUint16(o, true),
                      flushSubnormalF16(new Uint16Array(Float16Array.of(v).buffer)[0]!),
                    );
                  }
                } else {
                  assert.ok(Object.is(view.getFloat32(o, true), v), `f32 ${v} (${layout})`);
                }
              }
            }
          }
          for (let o = 0; o < regionBytes; o += bytes) {
            if (!touched.has(o)) assert.equal(got[o], 0, `byte ${o} was written`);
          }
          kernels.reset(table + 16);
        }
      }
    });
  });

  Deno.test(`attentionPaged (${variant}) equals contiguous attention on the values the cache holds, twin and f64 reference`, async () => {
    await withKernels({ threads: 1, variant }, (kernels) => {
      // A query item of 2^17 or more cannot take the f16 scale (2^112) in f32: such heads read
      // the keys as f32 first; the others move the scale onto the query. Both give these bits.
      const cases = [["f32", 0], ["f16", 0], ["f16", 2 ** 17]] as const;
      const layouts = cases.flatMap((c) => [[c, 3, 0], [c, 8, 0], [c, 8, 1], [c, 3, 2]] as const);
      for (const [[item, spike], blockSize, runHeads] of layouts) {
        for (const s of attentionShapes()) {
          const kv = { nKvHeads: s.nKvHeads, headDim: s.headDim, blockSize, item, runHeads };
          const k = pagedCase(kernels, kv, s.kvLen, 121);
          const v = pagedCase(kernels, kv, s.kvLen, 122);
          assert.deepEqual(k.ids, v.ids);
          const qLen = s.m * s.nHeads * s.headDim;
          const q = randomF32(qLen, 123, 2);
          if (spike) q[q.length - 1] = -spike;
          const [qo, out, twin, flat, ko, vo] = [
            put(kernels, q),
            kernels.alloc(qLen * 4),
            kernels.alloc(qLen * 4),
            kernels.alloc(qLen * 4),
            put(kernels, k.held),
            put(kernels, v.held),
          ];
          const shape = { ...s, blockSize, item, runHeads: k.runHeads, runStride: k.runStride };
          kernels.attentionPaged(qo, out, k.base, v.base, k.table, shape);
          kernels.scalar.attentionPaged(qo, twin, k.base, v.base, k.table, shape);
          kernels.attention(qo, ko, vo, flat, { ...s, capacity: s.kvLen });
          const got = read(kernels, out, qLen);
          const where = `${item}, blocks of ${blockSize}, runs of ${runHeads || "all"} kv heads`;
          assert.deepEqual(
            got,
            read(kernels, flat, qLen),
            `${where}: contiguous attention differs`,
          );
          assertClose(got, read(kernels, twin, qLen), TWIN_ERROR_BUDGET, `${where} twin`);
          kernels.reset();
        }
      }
    });
  });
}

/**
 * A paged attention call of more rows than attention_paged computes together (16): the second
 * group starts mid-block. `NINETEEN_ROWS_KV` is its cache's layout.
 */
const NINETEEN_ROWS = {
  m: 19,
  nHeads: 8,
  nKvHeads: 2,
  headDim: 64,
  blockSize: 16,
  kvLen: 150,
  qPos0: 131,
  scale: 0.125,
  item: "f16" as const,
};
const NINETEEN_ROWS_KV = { nKvHeads: 2, headDim: 64, blockSize: 16, item: "f16" as const };

Deno.test("attentionPaged with a window gives each row contiguous attention over the positions it sees, 1 and 2 threads, twin alike", async () => {
  for (const threads of [1, 2]) {
    await withKernels({ threads }, (kernels) => {
      // Each row sees its last 40 positions: windows start in mid-block, the earliest blocks
      // seen by no row.
      const s = { ...NINETEEN_ROWS, window: 40 };
      const kv = NINETEEN_ROWS_KV;
      const k = pagedCase(kernels, kv, s.kvLen, 141);
      const v = pagedCase(kernels, kv, s.kvLen, 142);
      const qLen = s.nHeads * s.headDim;
      const q = randomF32(s.m * qLen, 143);
      const [qo, out, twin, one] = [
        put(kernels, q),
        kernels.alloc(s.m * qLen * 4),
        kernels.alloc(s.m * qLen * 4),
        kernels.alloc(qLen * 4),
      ];
      kernels.attentionPaged(qo, out, k.base, v.base, k.table, s);
      kernels.scalar.attentionPaged(qo, twin, k.base, v.base, k.table, s);
      const got = read(kernels, out, s.m * qLen);
      assertClose(got, read(kernels, twin, s.m * qLen), TWIN_ERROR_BUDGET, "twin");
      /** Each kv head's rows first..first + n of a contiguous (nKv, kvLen, hd) cache. */
      const rows = (held: Float32Array, first: number, n: number) => {
        const out = new Float32Array(s.nKvHeads * n * s.headDim);
        for (let g = 0; g < s.nKvHeads; g++) {
          const from = (g * s.kvLen + first) * s.headDim;
          out.set(held.subarray(from, from + n * s.headDim), g * n * s.headDim);
        }
        return out;
      };
      for (let t = 0; t < s.m; t++) {
        const first = s.qPos0 + t + 1 - s.window;
        const mark = kernels.mark();
        kernels.attention(
          put(kernels, q.subarray(t * qLen, (t + 1) * qLen)),
          put(kernels, rows(k.held, first, s.window)),
          put(kernels, rows(v.held, first, s.window)),
          one,
          { ...s, m: 1, kvLen: s.window, capacity: s.window, qPos0: s.window - 1 },
        );
        assert.deepEqual(
          got.subarray(t * qLen, (t + 1) * qLen),
          read(kernels, one, qLen),
          `row ${t}, ${threads} threads`,
        );
        kernels.reset(mark);
      }
    });
  }
});

/**
 * Shapes whose rows `attention_paged` reads two at a time (two rows, or two heads of one kv
 * head), beside one at a time: f16 and f32 items, grouped and plain heads, head dims with and
 * without a tail of fewer than 16 or 4 items, f16 rows read in place and through the buffer.
 */
const PAIRED_ROWS = [
  { s: NINETEEN_ROWS, kv: NINETEEN_ROWS_KV },
  ...[7, 20, 64].map((headDim) => ({
    s: {
      ...NINETEEN_ROWS,
      m: 6,
      nHeads: 3,
      nKvHeads: 3,
      headDim,
      kvLen: 40,
      qPos0: 34,
      item: "f32" as const,
    },
    kv: { nKvHeads: 3, headDim, blockSize: 16, item: "f32" as const },
  })),
  {
    s: { ...NINETEEN_ROWS, m: 3, nHeads: 6, nKvHeads: 2, headDim: 20, kvLen: 23, qPos0: 20 },
    kv: { ...NINETEEN_ROWS_KV, headDim: 20 },
  },
  // Pairs of grouped heads: a row alone reads f16 in place, the batch through the buffer.
  {
    s: { ...NINETEEN_ROWS, m: 5, nHeads: 4, nKvHeads: 2, headDim: 36, kvLen: 45, qPos0: 40 },
    kv: { ...NINETEEN_ROWS_KV, headDim: 36 },
  },
];

Deno.test("attentionPaged gives each query row the bits of its m = 1 result, 1 and 2 threads alike", async () => {
  for (const [i, { s, kv }] of PAIRED_ROWS.entries()) {
    const results: Float32Array[] = [];
    for (const threads of [1, 2]) {
      await withKernels({ threads }, (kernels) => {
        const k = pagedCase(kernels, kv, s.kvLen, 131 + i);
        const v = pagedCase(kernels, kv, s.kvLen, 231 + i);
        const qLen = s.nHeads * s.headDim;
        const [qo, out, one] = [
          put(kernels, randomF32(s.m * qLen, 133)),
          kernels.alloc(s.m * qLen * 4),
          kernels.alloc(qLen * 4),
        ];
        kernels.attentionPaged(qo, out, k.base, v.base, k.table, s);
        const batch = read(kernels, out, s.m * qLen);
        assertRowsMatchSingle(batch, qLen, (t) => {
          const qPos0 = s.qPos0 + t;
          kernels.attentionPaged(qo + t * qLen * 4, one, k.base, v.base, k.table, {
            ...s,
            m: 1,
            qPos0,
            kvLen: Math.min(s.kvLen, qPos0 + 1),
          });
          return read(kernels, one, qLen);
        }, `paged case ${i} (${s.item}, head dim ${s.headDim}), ${threads} threads`);
        results.push(batch);
      });
    }
    assert.deepEqual(results[0], results[1]);
  }
});

Deno.test("attentionPagedMany gives every call the bits attentionPaged gives it alone, as one job or several", async () => {
  // Grouped heads are split into chunks of heads; one head per kv head at m = 1 (each cached
  // row read by one query row) gives each call whole to a thread, or a run of kv heads at a
  // time when its regions hold several.
  for (const [nKvHeads, runHeads] of [[4, 0], [8, 0], [8, 1], [8, 3]] as const) {
    await withKernels({ threads: 2 }, (kernels) => {
      // Ten sequences (more than one job's eight tasks), of lengths large enough to split.
      const kv = { nKvHeads, headDim: 64, blockSize: 16, item: "f16" as const, runHeads };
      const calls = Array.from({ length: 10 }, (_, i) => {
        const kvLen = 40 + 37 * i;
        const m = i % 3 === 0 && nKvHeads < 8 ? 3 : 1;
        const shape = {
          m,
          nHeads: 8,
          nKvHeads,
          headDim: 64,
          blockSize: 16,
          kvLen,
          qPos0: kvLen - m,
          scale: 0.125,
          item: "f16" as const,
          runHeads: 0,
          runStride: 0,
        };
        const k = pagedCase(kernels, kv, kvLen, 140 + i);
        const v = pagedCase(kernels, kv, kvLen, 160 + i);
        [shape.runHeads, shape.runStride] = [k.runHeads, k.runStride];
        const qLen = m * 8 * 64;
        const q = put(kernels, randomF32(qLen, 180 + i));
        const [out, alone] = [kernels.alloc(qLen * 4), kernels.alloc(qLen * 4)];
        kernels.attentionPaged(q, alone, k.base, v.base, k.table, shape);
        return {
          call: { q, out, kBase: k.base, vBase: v.base, table: k.table, shape },
          alone,
          qLen,
        };
      });
      // Repeated: two threads writing one call's scores into another's would show as a race.
      for (const threads of [1, 2, 2, 2, 2, 2, 2, 2, 2]) {
        kernels.threads = threads;
        kernels.attentionPagedMany(calls.map((c) => c.call));
        for (const [i, c] of calls.entries()) {
          const got = read(kernels, c.call.out, c.qLen);
          const runs = `runs of ${runHeads || "all"}`;
          const where = `${nKvHeads} kv heads in ${runs}, call ${i}, ${threads} threads`;
          assert.deepEqual(got, read(kernels, c.alone, c.qLen), where);
          kernels.f32(c.call.out, c.qLen).fill(NaN);
        }
      }
      assert.throws(
        () => kernels.attentionPagedMany([{ ...calls[0]!.call, table: calls[0]!.call.table + 2 }]),
        /not 4-byte aligned/,
      );
    });
  }
});

Deno.test("A recorded attentionPagedMany job made again positions later gives each call's bits, until a sequence outgrows its scores", async () => {
  await withKernels({ threads: 2 }, (kernels) => {
    // Four sequences, each with 80 rows cached past the ones the recorded job reads.
    const kv = { nKvHeads: 2, headDim: 64, blockSize: 16, item: "f16" as const };
    const calls = [200, 120, 100, 60].map((kvLen, i) => {
      const k = pagedCase(kernels, kv, kvLen + 80, 400 + i);
      const v = pagedCase(kernels, kv, kvLen + 80, 420 + i);
      const shape = {
        m: 1,
        nHeads: 8,
        nKvHeads: 2,
        headDim: 64,
        blockSize: 16,
        kvLen,
        qPos0: kvLen - 1,
        scale: 0.125,
        item: "f16" as const,
      };
      const q = put(kernels, randomF32(8 * 64, 440 + i));
      const [out, alone] = [kernels.alloc(8 * 64 * 4), kernels.alloc(8 * 64 * 4)];
      return { call: { q, out, kBase: k.base, vBase: v.base, table: k.table, shape }, alone };
    });
    kernels.threads = 2;
    const tape: KernelTape = { calls: [], allocs: [], hostWrites: 0 };
    kernels.tape = tape;
    kernels.attentionPagedMany(calls.map((c) => c.call));
    kernels.tape = null;
    const made = tape.calls[0];
    assert.ok(made && "job" in made && made.job.length === 4, "one job of four tasks");
    const { job, pool, threads, positions, fits } = made;
    assert.deepEqual(positions, [11, 12]);
    assert.ok(fits);
    for (const by of [1, 30, 56]) {
      assert.ok(fits(by), `${by} positions later`);
      const moved: Task[] = job.map((t) => ({
        ...t,
        args: t.args.map((a, i) => (positions!.includes(i) ? a + by : a)),
      }));
      // Repeated: one call's scores running into another's would show as a race.
      for (let round = 0; round < 4; round++) {
        pool.run(moved, threads);
        for (const [i, c] of calls.entries()) {
          const { q, kBase, vBase, table, shape } = c.call;
          const later = { ...shape, kvLen: shape.kvLen + by, qPos0: shape.kvLen + by - 1 };
          kernels.attentionPaged(q, c.alone, kBase, vBase, table, later);
          const got = read(kernels, c.call.out, 512);
          assert.deepEqual(got, read(kernels, c.alone, 512), `call ${i}, ${by} positions later`);
          kernels.f32(c.call.out, 512).fill(NaN);
        }
      }
    }
    // The first sequence's scores have room for 256 cached rows: 200 + 57 do not fit.
    assert.equal(fits(57), false);
  });
});

Deno.test("RMSNorm, the SiLU gate, Q8_0 quantization and KV stores split over two threads give the one-thread bits", async () => {
  await withKernels({ threads: 2 }, (kernels) => {
    // A prompt's rows (large enough to split), and an item count that leaves a SIMD tail.
    const [m, d] = [96, 768];
    const len = m * d - 5;
    const x = put(kernels, randomF32(m * d, 301, 3));
    const b = put(kernels, randomF32(m * d, 302));
    const w = put(kernels, randomF32(d, 303));
    const rb = kernels.q8RowBytes(d);
    const runs = {
      rmsNorm: (out: number) => kernels.rmsNorm(x, w, out, m, d, 1e-5),
      siluGate: (out: number) => kernels.siluGate(x, b, out, len),
      quantizeQ8_0: (out: number) => kernels.quantizeQ8_0(x, out, m, d),
    };
    const bytes = Math.max(m * d * 4, m * rb);
    for (const [name, run] of Object.entries(runs)) {
      const [one, two] = [kernels.alloc(bytes), kernels.alloc(bytes)];
      kernels.u8(one, bytes).fill(0xff);
      kernels.u8(two, bytes).fill(0xff);
      kernels.threads = 1;
      run(one);
      // Repeated: chunks written to the wrong rows would show as a difference.
      for (let i = 0; i < 4; i++) {
        kernels.threads = 2;
        run(two);
        const want = kernels.u8(one, bytes);
        const at = kernels.u8(two, bytes).findIndex((v, j) => v !== want[j]);
        assert.equal(at, -1, `${name}: byte ${at} of ${bytes} differs`);
      }
    }
    // A prompt's 96 positions of 12 kv heads stored into blocks, in runs of 6 heads.
    const kv = { nKvHeads: 12, headDim: 64, blockSize: 16, item: "f16" as const, runHeads: 6 };
    const regions = [1, 2].map((threads) => {
      kernels.threads = threads;
      const c = pagedCase(kernels, kv, 96, 304);
      return kernels.u8(c.base, 2 * c.runStride).slice();
    });
    const at = regions[1]!.findIndex((v, j) => v !== regions[0]![j]);
    assert.equal(at, -1, `storeKvPaged: byte ${at} differs`);
  });
});

Deno.test("paged KV kernels reject bad block tables, items and shapes with a RangeError or TypeError", async () => {
  await withKernels({ threads: 1 }, (kernels) => {
    const s = {
      m: 1,
      nHeads: 2,
      nKvHeads: 1,
      headDim: 8,
      blockSize: 4,
      kvLen: 6,
      qPos0: 5,
      scale: 1,
      item: "f16" as const,
    };
    const q = kernels.alloc(64 * 4);
    const region = kernels.alloc(4 * 4 * 8 * 2);
    const table = put(kernels, Int32Array.from([0, 1]));
    kernels.attentionPaged(q, q, region, region, table, s);
    const bad = put(kernels, Int32Array.from([0, -1]));
    assert.throws(
      () => kernels.attentionPaged(q, q, region, region, bad, s),
      /block table entry 1 is negative/,
    );
    const far = put(kernels, Int32Array.from([0, 1 << 28]));
    assert.throws(
      () => kernels.attentionPaged(q, q, region, region, far, s),
      /'kBase block 268435456 \(entry 1\)'/,
    );
    assert.throws(
      () => kernels.attentionPaged(q, q, region, region, table + 2, s),
      /not 4-byte aligned/,
    );
    assert.throws(
      () => kernels.attentionPaged(q, q, region, region, table, { ...s, item: "bf16" as "f16" }),
      TypeError,
    );
    assert.throws(
      () => kernels.attentionPaged(q, q, region, region, table, { ...s, nKvHeads: 3 }),
      RangeError,
    );
    assert.throws(
      () => kernels.attentionPaged(q, q, region, region, table, { ...s, blockSize: 0 }),
      /'blockSize'/,
    );
    assert.throws(
      () => kernels.storeKvPaged(q, 8, 8, region, far, 4, "f32", 1, 8, 3, 2),
      RangeError,
    );
    assert.throws(
      () => kernels.storeKvPaged(WASM32_MAX_BYTES - 8, 8, 8, region, table, 4, "f32", 1, 8, 0, 2),
      /'src'/,
    );
    kernels.storeKvPaged(q, 8, 8, region, far, 4, "f32", 1, 8, 0, 4);
    // Runs of one kv head, two blocks each: block 2 would run into the next kv head's.
    const two = { ...s, nHeads: 2, nKvHeads: 2, runHeads: 1, runStride: 2 * 4 * 8 * 2 };
    const big = kernels.alloc(4 * 2 * 4 * 8 * 2);
    kernels.attentionPaged(q, q, big, big, table, two);
    const past = put(kernels, Int32Array.from([0, 2]));
    assert.throws(
      () => kernels.attentionPaged(q, q, big, big, past, two),
      /block 2 \(entry 1\) runs past its run's 128 bytes of blocks/,
    );
    assert.throws(
      () => kernels.storeKvPaged(q, 8, 8, big, past, 4, "f16", 2, 8, 0, 6, 1, 128),
      /runs past its run's/,
    );
  });
});

Deno.test("interleaveQ4_0Rows8 keeps Q4_0 matmul results bit for bit, 1 and 2 threads", async () => {
  for (const threads of [1, 2]) {
    await withKernels({ threads }, (kernels) => {
      for (const [m, n, k] of [[1, 19, 64], [5, 37, 96], [1, 64, 256]] as const) {
        const w = randomQ4(n, k, 61);
        const x = randomF32(m * k, 62);
        const [wo, w8, xo, y, y8, ys] = [
          put(kernels, w.bytes),
          put(kernels, w.bytes),
          put(kernels, x),
          kernels.alloc(m * n * 4),
          kernels.alloc(m * n * 4),
          kernels.alloc(m * n * 4),
        ];
        kernels.interleaveQ4_0Rows8(w8, n, k);
        if (n >= 8) assert.notDeepEqual(kernels.u8(w8, w.bytes.length), w.bytes);
        kernels.matmulQ4_0(wo, xo, y, m, n, k);
        kernels.matmulQ4_0(w8, xo, y8, m, n, k, "rows8");
        const xq = kernels.alloc(m * kernels.q8RowBytes(k));
        kernels.scalar.quantizeQ8_0(xo, xq, m, k);
        kernels.scalar.matmulQ4_0Q8_0(w8, xq, ys, m, n, k, "rows8");
        const ref = read(kernels, y, m * n);
        assert.deepEqual(read(kernels, y8, m * n), ref);
        assert.deepEqual(read(kernels, ys, m * n), ref);
        kernels.reset();
      }
      assert.throws(() => kernels.matmulQ4_0Q8_0(0, 0, 0, 1, 8, 32, "rows4" as "rows8"), TypeError);
    });
  }
});

Deno.test("q4_0Rows8Row gives back each row of a rows8 W as it was, in both builds", async () => {
  for (const variant of ["relaxed", "simd128"] as const) {
    await withKernels({ threads: 1, variant }, (kernels) => {
      // Three groups of 8 rows, then 5 rows left in GGML rows.
      const [n, k] = [8 * 3 + 5, 96];
      const w = randomQ4(n, k, 97).bytes;
      const at = put(kernels, w);
      kernels.interleaveQ4_0Rows8(at, n, k);
      const rowBytes = (k / 32) * 18;
      for (let r = 0; r < n; r++) {
        const row = w.subarray(r * rowBytes, (r + 1) * rowBytes);
        assert.deepEqual(kernels.q4_0Rows8Row(at, n, k, r), row, `${variant}, row ${r}`);
      }
      assert.throws(() => kernels.q4_0Rows8Row(at, n, k, n), /not one of W's 29 rows/);
    });
  }
});

Deno.test("Q4_0 passes and prompt tiles summing in i32 lanes give the bits of i16 sums, 1 to 40 tokens, tiles from 8 or 4 tokens, 1 and 2 threads", async () => {
  for (const threads of [1, 2]) {
    await withKernels({ threads }, (kernels) => {
      // 16-row tiles, an 8-row rows8 tail, then 5 rows left in GGML rows; the passes of one
      // to seven tokens read the nine rows8 groups as one stream, or as eight and one more.
      const [n, k] = [8 * 9 + 5, 512];
      const w = put(kernels, randomQ4(n, k, 91).bytes);
      kernels.interleaveQ4_0Rows8(w, n, k);
      const settings = [8, 4].flatMap((tileFrom) =>
        [...new Set([1, kernels.maxQ4Streams])].map((streams) => ({ tileFrom, streams }))
      );
      for (const { tileFrom, streams } of settings) {
        kernels.q4TileFrom = tileFrom;
        kernels.q4Streams = streams;
        for (const m of [1, 2, 3, 4, 7, 8, 13, 16, 40]) {
          const xq = kernels.alloc(m * kernels.q8RowBytes(k));
          kernels.quantizeQ8_0(put(kernels, randomF32(m * k, 92 + m, 4)), xq, m, k);
          const run = (on: boolean) => {
            kernels.q4I32Sums = on;
            const y = kernels.alloc(m * n * 4);
            kernels.matmulQ4_0Q8_0(w, xq, y, m, n, k, "rows8");
            return read(kernels, y, m * n);
          };
          const i16 = run(false);
          const at = `m = ${m}, tiles from ${tileFrom}, ${streams} stream(s), ${threads} thread(s)`;
          assert.deepEqual(run(true), i16, at);
          const ys = kernels.alloc(m * n * 4);
          kernels.scalar.matmulQ4_0Q8_0(w, xq, ys, m, n, k, "rows8");
          assert.deepEqual(read(kernels, ys, m * n), i16, `the twin, ${at}`);
        }
      }
      assert.equal(kernels.q4I32Sums, true);
    });
  }
});

Deno.test("Q4_0 weights read as several streams, or through tiles from two to eight tokens on, give the bits of one stream, one to nine tokens, 1 and 2 threads", async () => {
  for (const threads of [1, 2]) {
    await withKernels({ threads }, (kernels) => {
      const wide = kernels.maxQ4Streams;
      assert.equal(wide, kernels.variant === "relaxed" ? 8 : 1);
      // 37 rows8 groups (4 per stream and five left over), then 5 rows left in GGML rows.
      const [n, k] = [8 * 37 + 5, 256];
      const w = put(kernels, randomQ4(n, k, 71).bytes);
      kernels.interleaveQ4_0Rows8(w, n, k);
      for (let m = 1; m <= 9; m++) {
        const xq = kernels.alloc(m * kernels.q8RowBytes(k));
        kernels.quantizeQ8_0(put(kernels, randomF32(m * k, 72 + m)), xq, m, k);
        const run = (streams: number, tileFrom = 8) => {
          kernels.q4Streams = streams;
          kernels.q4TileFrom = tileFrom;
          const y = kernels.alloc(m * n * 4);
          kernels.matmulQ4_0Q8_0(w, xq, y, m, n, k, "rows8");
          return read(kernels, y, m * n);
        };
        const one = run(1);
        assert.deepEqual(run(wide), one, `m = ${m}, ${threads} thread(s)`);
        for (const from of [2, 4]) {
          assert.deepEqual(
            run(wide, from),
            one,
            `tiles from ${from}, m = ${m}, ${threads} thread(s)`,
          );
        }
        const ys = kernels.alloc(m * n * 4);
        kernels.scalar.matmulQ4_0Q8_0(w, xq, ys, m, n, k, "rows8");
        assert.deepEqual(read(kernels, ys, m * n), one, `the twin, m = ${m}`);
      }
      assert.throws(() => kernels.q4Streams = 3, RangeError);
      assert.equal(kernels.q4Streams, wide);
      for (const from of [1, 9, 2.5]) assert.throws(() => kernels.q4TileFrom = from, RangeError);
      assert.equal(kernels.q4TileFrom, 4);
    });
  }
});

Deno.test("matmul*Many give the bits of separate calls, 1 and 2 threads, as one job", async () => {
  for (const threads of [1, 2]) {
    await withKernels({ threads }, (kernels) => {
      for (const [m, k] of [[1, 768], [3, 256]] as const) {
        const ns = [768, 256, 257, 1024];
        const x = randomF32(m * k, 91);
        const xo = put(kernels, x);
        const xq = kernels.alloc(m * kernels.q8RowBytes(k));
        kernels.quantizeQ8_0(xo, xq, m, k);
        const q4 = ns.map((n, i) => {
          const w = put(kernels, randomQ4(n, k, 92 + i).bytes);
          if (i % 2 === 0) kernels.interleaveQ4_0Rows8(w, n, k);
          return { w, n, layout: i % 2 === 0 ? "rows8" as const : "ggml" as const };
        });
        const f32 = ns.map((n, i) => ({ w: put(kernels, randomF32(n * k, 96 + i)), n }));
        const f16 = ns.map((n, i) => ({
          w: put(kernels, Uint16Array.from(randomF32(n * k, 99 + i), (v) => f32ToF16(v))),
          n,
        }));
        const outs = <T extends { n: number }>(ws: T[]) =>
          ws.map((t) => ({ ...t, y: kernels.alloc(m * t.n * 4) }));
        const values = (ts: { y: number; n: number }[]) =>
          ts.map((t) => read(kernels, t.y, m * t.n));
        const [a, b] = [outs(q4), outs(q4)];
        kernels.matmulQ4_0Q8_0Many(xq, m, k, a);
        for (const t of b) kernels.matmulQ4_0Q8_0(t.w, xq, t.y, m, t.n, k, t.layout);
        assert.deepEqual(values(a), values(b), `Q4_0 m ${m}, ${threads} threads`);
        const [c, d] = [outs(f32), outs(f32)];
        kernels.matmulF32Many(xo, m, k, c);
        for (const t of d) kernels.matmulF32(t.w, xo, t.y, m, t.n, k);
        assert.deepEqual(values(c), values(d), `f32 m ${m}, ${threads} threads`);
        const [e, f] = [outs(f16), outs(f16)];
        kernels.matmulF16Many(xo, m, k, e);
        for (const t of f) kernels.matmulF16(t.w, xo, t.y, m, t.n, k);
        assert.deepEqual(values(e), values(f), `f16 m ${m}, ${threads} threads`);
        kernels.reset();
      }
    });
  }
});

Deno.test("matmul*Many reject too many targets and a target outside the memory", async () => {
  await withKernels({ threads: 1 }, (kernels) => {
    const x = kernels.alloc(64 * 4);
    const t = { w: x, y: x, n: 1 };
    assert.throws(() => kernels.matmulF32Many(x, 1, 16, Array(9).fill(t)), /at most 8 targets/);
    assert.throws(
      () => kernels.matmulF32Many(x, 1, 16, [t, { ...t, y: WASM32_MAX_BYTES - 4 }]),
      (e: unknown) => e instanceof RangeError && /'targets\[1\]\.y'/.test(e.message),
    );
    assert.throws(() => kernels.matmulQ4_0Q8_0Many(x, 1, 33, [t]), RangeError);
  });
});

Deno.test("relaxed and simd128 builds give identical Q4_0 results", async () => {
  const ys: Float32Array[] = [];
  for (const variant of ["simd128", "relaxed"] as const) {
    await withKernels({ threads: 1, variant }, (kernels) => {
      ys.push(q4Case(kernels, 6, 20, 128, false).y);
    });
  }
  assert.deepEqual(ys[0], ys[1]);
});

Deno.test("selfTest passes for both builds in Deno", async () => {
  for (const name of ["relaxed", "simd128"]) {
    const bytes = await Deno.readFile(new URL(`./wasm/kernels_${name}.wasm`, import.meta.url));
    assert.equal(await selfTest(await WebAssembly.compile(bytes)), true, name);
  }
});

Deno.test("loadKernels with 1 and 2 threads gives bit-identical results", async () => {
  const results: Float32Array[][] = [];
  for (const threads of [1, 2]) {
    await withKernels({ threads }, (kernels) => {
      assert.equal(kernels.maxThreads, threads);
      const out: Float32Array[] = [];
      // Large enough to be split over the threads.
      const [m, n, k] = [3, 301, 896];
      const w = randomQ4(n, k, 51);
      const wf = randomF32(n * k, 52);
      const wh = Uint16Array.from(wf, (v) => f32ToF16(v));
      const x = randomF32(m * k, 53);
      const [wo, wfo, who, xo, y] = [
        put(kernels, w.bytes),
        put(kernels, wf),
        put(kernels, wh),
        put(kernels, x),
        kernels.alloc(m * n * 4),
      ];
      kernels.matmulQ4_0(wo, xo, y, m, n, k);
      out.push(read(kernels, y, m * n));
      kernels.matmulQ4_0(wo, xo, y, 1, n, k);
      out.push(read(kernels, y, n));
      kernels.matmulF32(wfo, xo, y, m, n, k);
      out.push(read(kernels, y, m * n));
      kernels.matmulF16(who, xo, y, m, n, k);
      out.push(read(kernels, y, m * n));
      for (const s of attentionShapes()) out.push(attentionCase(kernels, s).got);
      results.push(out);
    });
  }
  assert.deepEqual(results[0], results[1]);
});

for (const name of ["Worker", "SharedArrayBuffer"] as const) {
  Deno.test(`loadKernels falls back to the main thread without ${name}`, async () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, name)!;
    // deno-lint-ignore no-explicit-any
    delete (globalThis as any)[name];
    try {
      await withKernels({ threads: 2 }, (kernels) => {
        assert.equal(kernels.maxThreads, 1);
        assert.equal(kernels.threads, 1);
        const y = q4Case(kernels, 2, 9, 64, false).y;
        assert.deepEqual(y, q4Case(kernels, 2, 9, 64, true).y);
      });
    } finally {
      Object.defineProperty(globalThis, name, saved);
    }
  });
}

Deno.test("loadKernels runs on the main thread when workers cannot start", async () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, "Worker")!;
  Object.defineProperty(globalThis, "Worker", {
    configurable: true,
    writable: true,
    value: class {
      constructor() {
        throw new Error("workers are disabled here");
      }
    },
  });
  try {
    await withKernels({ threads: 2 }, (kernels) => {
      assert.equal(kernels.maxThreads, 1);
      const y = q4Case(kernels, 2, 9, 64, false).y;
      assert.deepEqual(y, q4Case(kernels, 2, 9, 64, true).y);
    });
  } finally {
    Object.defineProperty(globalThis, "Worker", saved);
  }
});

Deno.test("kernels keep working on the calling thread after close", async () => {
  const kernels = await loadKernels({ threads: 2 });
  kernels.close();
  kernels.close();
  assert.equal(kernels.threads, 1);
  const y = q4Case(kernels, 2, 9, 64, false).y;
  assert.deepEqual(y, q4Case(kernels, 2, 9, 64, true).y);
});

Deno.test("allocWeights rejects a model over the 4 GiB wasm32 ceiling with a RangeError", async () => {
  await withKernels({ threads: 1, arenaBytes: 1 << 20 }, (kernels) => {
    const slot = kernels.allocWeights(1000);
    assert.equal(slot.bytes.length, 1000);
    assert.throws(() => kernels.allocWeights(WASM32_MAX_BYTES), (e: unknown) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /does not fit in wasm32 memory/);
      return true;
    });
    assert.equal(kernels.allocWeights(16).offset >= slot.offset + 1000, true);
  });
});

Deno.test("weightsOffset and weightBytes span what allocWeights reserved", async () => {
  await withKernels({ threads: 1, arenaBytes: 1 << 20 }, (kernels) => {
    assert.equal(kernels.weightBytes, 0);
    const first = kernels.allocWeights(1000);
    const second = kernels.allocWeights(64, 64);
    assert.equal(first.offset, kernels.weightsOffset);
    assert.equal(kernels.weightsOffset + kernels.weightBytes, second.offset + 64);
    // The region reads back what was written into it: 240 words of 0x01010101.
    first.bytes.fill(1);
    assert.equal(kernels.readSum(kernels.weightsOffset, 960), 240 * 0x01010101);
  });
});

Deno.test("alloc and reset manage the activation arena", async () => {
  await withKernels({ threads: 1, arenaBytes: 4096 }, (kernels) => {
    const a = kernels.alloc(100);
    const b = kernels.alloc(100);
    assert.equal(a % 16, 0);
    assert.equal(b >= a + 100 && b % 16 === 0, true);
    const mark = kernels.mark();
    kernels.alloc(200);
    kernels.reset(mark);
    assert.equal(kernels.alloc(8), mark + (16 - mark % 16) % 16);
    kernels.reset();
    assert.equal(kernels.alloc(8), a);
    assert.throws(() => kernels.alloc(5000), RangeError);
  });
});

Deno.test("kernels reject bad dimensions and out-of-memory offsets", async () => {
  await withKernels({ threads: 1 }, (kernels) => {
    const x = kernels.alloc(64 * 4);
    assert.throws(() => kernels.quantizeQ8_0(x, x, 1, 33), RangeError);
    assert.throws(() => kernels.softmax(x, x, 1, -1), RangeError);
    assert.throws(() => kernels.softmax(WASM32_MAX_BYTES - 4, x, 1, 4), RangeError);
    assert.throws(() => kernels.weighLogits(x, x, 1.5, 0, 1, x), RangeError);
    assert.throws(() => kernels.weighLogits(x, x, 4, 0, 1, x + 4), /8-byte aligned/);
    assert.throws(() => kernels.weighLogits(x, x, 4, 0, 1, WASM32_MAX_BYTES - 4), RangeError);
    assert.throws(
      () => kernels.attention(x, x, x, x, { ...attentionShapes()[0]!, nKvHeads: 3 }),
      RangeError,
    );
  });
});

Deno.test("beginStep and endStep feed the thread policy", async () => {
  await withKernels({ threads: 1 }, (kernels) => {
    // The first step wakes the threads and is not timed; the second is.
    for (let i = 0; i < 2; i++) {
      kernels.beginStep();
      kernels.endStep();
    }
    assert.equal(kernels.threads, 1);
    assert.ok(kernels.policy.median(1)! >= 0);
  });
});

for (const variant of ["simd128", "relaxed"] as const) {
  Deno.test(`dotPeak (${variant}) computes the dot products it is timed for`, async () => {
    await withKernels({ threads: 1, variant }, (kernels) => {
      const bytes = 256;
      const rounds = 3;
      const p = kernels.alloc(bytes);
      const data = kernels.u8(p, bytes);
      data.forEach((_, i) => (data[i] = (i * 37 + 11) & 255));
      // Lane 0 of each dot: bytes 0, 1 (relaxed: i8 by the weights j + 1) or the i16 word 0
      // (simd128: by (j + 1) * 257), of both 16-byte halves, for the six weights j.
      const i8 = new Int8Array(data.buffer, data.byteOffset, bytes);
      const i16 = new Int16Array(data.buffer, data.byteOffset, bytes / 2);
      let lane = 0;
      for (let o = 0; o < bytes; o += 32) {
        lane += variant === "relaxed"
          ? 21 * (i8[o]! + i8[o + 1]! + i8[o + 16]! + i8[o + 17]!)
          : 21 * 257 * (i16[o / 2]! + i16[o / 2 + 1]! + i16[o / 2 + 8]! + i16[o / 2 + 9]!);
      }
      const expected = ((lane * rounds) % 65536 + 65536) % 65536;
      assert.equal(kernels.dotPeak(p, bytes, rounds), expected);
    });
  });
}
