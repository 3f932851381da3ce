import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { dequantizeQ40 } from "../nnef/q40.ts";
import { f16Table } from "../tensor/f16.ts";
import { type Dim, dimEquals, shapeToString } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { broadcastStrides, finish } from "./common.ts";

/** Output shape of `A @ B` with numpy batch broadcasting (leading unit axes added). */
export function matmulShape(
  a: readonly Dim[],
  b: readonly Dim[],
  ta: boolean,
  tb: boolean,
): Dim[] {
  if (a.length < 2 || b.length < 2) {
    throw new RangeError(
      `matmul: operands ${shapeToString(a)} and ${shapeToString(b)} need rank >= 2`,
    );
  }
  const rank = Math.max(a.length, b.length);
  const pa = [...new Array<Dim>(rank - a.length).fill(1), ...a];
  const pb = [...new Array<Dim>(rank - b.length).fill(1), ...b];
  const m = ta ? pa[rank - 1]! : pa[rank - 2]!;
  const ka = ta ? pa[rank - 2]! : pa[rank - 1]!;
  const kb = tb ? pb[rank - 1]! : pb[rank - 2]!;
  const n = tb ? pb[rank - 2]! : pb[rank - 1]!;
  if (!dimEquals(ka, kb)) {
    throw new RangeError(
      `matmul: inner dims differ in ${shapeToString(a)} x ${shapeToString(b)}${
        tb ? " (B transposed)" : ""
      }`,
    );
  }
  const out: Dim[] = [];
  for (let i = 0; i < rank - 2; i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (dimEquals(x, y) || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else {throw new RangeError(
        `matmul: batch dims of ${shapeToString(a)} and ${shapeToString(b)} differ`,
      );}
  }
  return [...out, m, n];
}

/** f32 values of a tensor (q40 dequantized). */
export function asF32(t: Tensor): Float32Array {
  if (t.dtype === "q40") return dequantizeQ40(t.data as Uint8Array, volume(t.shape));
  if (t.data instanceof Float32Array) return t.data;
  return Float32Array.from(t.data as Float64Array);
}

/**
 * `sum_k x[k] * w[row, k]` for the Q4_0 row `row` of a (rows, k) weight, dequantized block by
 * block on the fly (GGML layout: f16 scale, low nibbles are items 0..15, high 16..31).
 */
export function dotQ40Row(
  blocks: Uint8Array,
  row: number,
  k: number,
  x: Float32Array,
  xOffset: number,
): number {
  const f16 = f16Table();
  const nb = k >> 5;
  let off = row * nb * 18;
  let acc = 0;
  for (let b = 0; b < nb; b++, off += 18) {
    const d = f16[blocks[off]! | (blocks[off + 1]! << 8)]!;
    const xo = xOffset + (b << 5);
    let s = 0;
    for (let j = 0; j < 16; j++) {
      const q = blocks[off + 2 + j]!;
      s += ((q & 15) - 8) * x[xo + j]! + ((q >> 4) - 8) * x[xo + 16 + j]!;
    }
    acc += d * s;
  }
  return acc;
}

/** `out[o + j] = x[xo..xo+k] · w[wo + j*k ..]` for j < n: one row against n weight rows. */
function rowsDot(
  out: Float32Array,
  o: number,
  x: Float32Array,
  xo: number,
  w: Float32Array,
  wo: number,
  n: number,
  k: number,
): void {
  const k4 = k - (k % 4);
  for (let j = 0; j < n; j++) {
    const r = wo + j * k;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let p = 0;
    for (; p < k4; p += 4) {
      s0 += x[xo + p]! * w[r + p]!;
      s1 += x[xo + p + 1]! * w[r + p + 1]!;
      s2 += x[xo + p + 2]! * w[r + p + 2]!;
      s3 += x[xo + p + 3]! * w[r + p + 3]!;
    }
    for (; p < k; p++) s0 += x[xo + p]! * w[r + p]!;
    out[o + j] = s0 + s1 + s2 + s3;
  }
}

/** `A @ B` over f32 values, Q4_0 operands read block-wise (B transposed) or dequantized. */
export function matmulEval(a: Tensor, b: Tensor, ta: boolean, tb: boolean): Tensor {
  const shape = matmulShape(a.shape, b.shape, ta, tb) as number[];
  const rank = shape.length;
  const m = shape[rank - 2]!;
  const n = shape[rank - 1]!;
  const k = ta ? a.shape[a.shape.length - 2]! : a.shape[a.shape.length - 1]!;
  const batchShape = shape.slice(0, rank - 2);
  const batches = volume(batchShape);
  const aBatch = [...new Array<number>(rank - a.shape.length).fill(1), ...a.shape.slice(0, -2)];
  const bBatch = [...new Array<number>(rank - b.shape.length).fill(1), ...b.shape.slice(0, -2)];
  const sa = broadcastStrides(aBatch, batchShape);
  const sb = broadcastStrides(bBatch, batchShape);
  const av = asF32(a);
  const quantB = b.dtype === "q40" && tb && k % 32 === 0 ? (b.data as Uint8Array) : null;
  const bv = quantB ? null : asF32(b);
  const dtype = a.dtype === "f16" && (b.dtype === "f16" || b.dtype === "q40") ? "f16" : "f32";
  const out = new Float32Array(batches * m * n);
  const row = new Float32Array(k);
  for (let bi = 0; bi < batches; bi++) {
    let ao = 0;
    let bo = 0;
    let rest = bi;
    for (let ax = batchShape.length - 1; ax >= 0; ax--) {
      const c = rest % batchShape[ax]!;
      rest = Math.floor(rest / batchShape[ax]!);
      ao += c * sa[ax]!;
      bo += c * sb[ax]!;
    }
    ao *= m * k;
    bo *= k * n;
    const oo = bi * m * n;
    for (let i = 0; i < m; i++) {
      let xo: number;
      let xs: Float32Array;
      if (ta) {
        for (let p = 0; p < k; p++) row[p] = av[ao + p * m + i]!;
        xs = row;
        xo = 0;
      } else {
        xs = av;
        xo = ao + i * k;
      }
      const orow = oo + i * n;
      if (quantB) {
        const rowBase = bo / k;
        for (let j = 0; j < n; j++) out[orow + j] = dotQ40Row(quantB, rowBase + j, k, xs, xo);
      } else if (tb) {
        rowsDot(out, orow, xs, xo, bv!, bo, n, k);
      } else {
        for (let j = 0; j < n; j++) out[orow + j] = 0;
        for (let p = 0; p < k; p++) {
          const x = xs[xo + p]!;
          if (x === 0) continue;
          const wo = bo + p * n;
          for (let j = 0; j < n; j++) out[orow + j] = out[orow + j]! + x * bv![wo + j]!;
        }
      }
    }
  }
  return finish(tensor(dtype, shape, out));
}

/** `matmul(A, B, transposeA, transposeB)` with batch broadcasting; B may be Q4_0. */
export const matmul: Op = {
  signature:
    "fragment matmul(A: tensor<scalar>, B: tensor<scalar>, transposeA: logical = false, transposeB: logical = false) -> (C: tensor<scalar>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const a = args.tensor("A");
    const b = args.tensor("B");
    const shape = matmulShape(a.shape, b.shape, args.bool("transposeA"), args.bool("transposeB"));
    const dtype = a.dtype === "f16" && (b.dtype === "f16" || b.dtype === "q40") ? "f16" : "f32";
    return [{ dtype, shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    return [
      matmulEval(
        args.tensor("A"),
        args.tensor("B"),
        args.bool("transposeA"),
        args.bool("transposeB"),
      ),
    ];
  },
};
