/** Index helpers for the shape-moving ops (slice, transpose, tile, concat, gather). */
import { strides, volume } from "../tensor/tensor.ts";

type Numeric = Float32Array | Float64Array | Uint8Array;

/**
 * Copies the strided box `count` (per axis) starting at `start` with `step` of `src`
 * (row-major, `srcShape`) into `dst` row-major from `dstOffset`.
 */
export function copyBox(
  src: Numeric | string[],
  srcShape: readonly number[],
  start: readonly number[],
  step: readonly number[],
  count: readonly number[],
  dst: Numeric | string[],
  dstOffset = 0,
): void {
  const rank = srcShape.length;
  const n = volume(count);
  if (n === 0) return;
  if (rank === 0) {
    dst[dstOffset] = src[0] as never;
    return;
  }
  const st = strides(srcShape);
  const walk = st.map((s, i) => s * step[i]!);
  let base = 0;
  for (let i = 0; i < rank; i++) base += start[i]! * st[i]!;
  const inner = count[rank - 1]!;
  const innerStep = walk[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  let o = dstOffset;
  let off = base;
  for (let done = 0; done < n; done += inner) {
    if (innerStep === 1 && !Array.isArray(src) && !Array.isArray(dst)) {
      (dst as Float32Array).set((src as Float32Array).subarray(off, off + inner), o);
      o += inner;
    } else {
      for (let k = 0; k < inner; k++) dst[o++] = src[off + k * innerStep] as never;
    }
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]!++;
      off += walk[ax]!;
      if (idx[ax]! < count[ax]!) break;
      off -= walk[ax]! * count[ax]!;
      idx[ax] = 0;
    }
  }
}

/** Storage like `like` (same array kind) of `n` items. */
export function allocLike(like: Numeric | string[], n: number): Numeric | string[] {
  if (Array.isArray(like)) return new Array<string>(n).fill("");
  return new (like.constructor as new (n: number) => Numeric)(n);
}
