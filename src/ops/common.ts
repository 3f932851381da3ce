/** Helpers shared by the op files: broadcasting, item types, loops and folding. */
import { allocData, type DType, isFloat, isInteger } from "../tensor/dtype.ts";
import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { roundToF16 } from "../tensor/f16.ts";
import { type Dim, dimBroadcast, isConcrete, shapeToString } from "../tensor/dim.ts";
import type { EvalContext, Fact } from "./op.ts";

const WEAK = new WeakSet<object>();

/** Marks a literal's tensor as weakly typed (it takes the other operand's item type). */
export function markWeak<T extends Tensor>(t: T): T {
  WEAK.add(t);
  return t;
}

export function isWeak(t: Tensor | Fact): boolean {
  return "data" in t ? WEAK.has(t) : t.weak === true;
}

/** The item type of `a op b` for arithmetic and select branches. */
export function unifyDtypes(a: Tensor | Fact, b: Tensor | Fact): DType {
  const wa = isWeak(a);
  const wb = isWeak(b);
  if (wa && !wb) return b.dtype;
  if (wb && !wa) return a.dtype;
  if (a.dtype === b.dtype) return a.dtype;
  const fa = isFloat(a.dtype);
  const fb = isFloat(b.dtype);
  if (fa && !fb) return a.dtype;
  if (fb && !fa) return b.dtype;
  if (fa && fb) return a.dtype === "f16" ? b.dtype : a.dtype;
  if (a.dtype === "tdim" || b.dtype === "tdim") return "tdim";
  if (a.dtype === "bool") return b.dtype;
  return a.dtype;
}

/** Fact of a value with no known contents. */
export function fact(dtype: DType, shape: readonly Dim[]): Fact {
  return { dtype, shape: [...shape] };
}

/** True for item types whose contents may be folded symbolically. */
export function isIntegerLike(dtype: DType): boolean {
  return isInteger(dtype) || dtype === "bool";
}

/** Known integer contents of a fact, or undefined. */
export function knownDims(f: Fact): readonly Dim[] | undefined {
  if (f.dims) return f.dims;
  if (f.value && isIntegerLike(f.value.dtype) && volume(f.value.shape) <= 4096) {
    return Array.from(f.value.data as Float64Array | Uint8Array);
  }
  return undefined;
}

/** The shape as numbers, or undefined when a dim is symbolic. */
export function concreteShape(shape: readonly Dim[]): number[] | undefined {
  return shape.every(isConcrete) ? (shape as number[]) : undefined;
}

/**
 * NNEF broadcasting: the lower rank gets trailing unit axes, then numpy rules; symbolic dims
 * that may differ give a `broadcast` term, checked once their symbols have values (tract's).
 *
 * @throws {RangeError} when two constant dims differ and neither is 1
 */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[i] ?? 1;
    const y = b[i] ?? 1;
    if (typeof x === "number" && typeof y === "number" && x !== y && x !== 1 && y !== 1) {
      throw new RangeError(
        `Cannot broadcast shapes ${shapeToString(a)} and ${shapeToString(b)} (axis ${i})`,
      );
    }
    out.push(dimBroadcast(x, y));
  }
  return out;
}

/** Strides of `shape` (padded with trailing unit axes to `rank`) for reading it broadcast. */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const rank = outShape.length;
  const out = new Array<number>(rank).fill(0);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    const d = shape[i] ?? 1;
    out[i] = d === 1 && outShape[i] !== 1 ? 0 : s;
    s *= d;
  }
  return out;
}

/** Storage of `n` items of `dtype`. */
export function alloc(dtype: DType, n: number): Float32Array | Float64Array | Uint8Array {
  if (dtype === "string" || dtype === "q40") {
    throw new TypeError(`No arithmetic on ${dtype} tensors`);
  }
  return allocData(dtype, n) as Float32Array | Float64Array | Uint8Array;
}

/** Room for `n` floats: in the run's arena when it has them, for the kernels to read in place. */
export function f32Result(ctx: EvalContext | undefined, n: number): Float32Array {
  const at = ctx?.arena?.alloc(n * 4) ?? null;
  return at === null ? new Float32Array(n) : ctx!.arena!.view(at, n);
}

/** Rounds f16 results in place; integer results are truncated by the caller. */
export function finish(t: Tensor): Tensor {
  if (t.dtype === "f16") {
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = roundToF16(d[i]!);
  }
  return t;
}

type Numeric = Float32Array | Float64Array | Uint8Array;

/**
 * Applies `f` element-wise over `a` and `b` broadcast together; writes to a new tensor of
 * `dtype`.
 */
export function binaryEval(
  a: Tensor,
  b: Tensor,
  dtype: DType,
  f: (x: number, y: number) => number,
): Tensor {
  const outShape = broadcastShapes(a.shape, b.shape) as number[];
  const n = volume(outShape);
  const out = alloc(dtype, n);
  const ad = a.data as Numeric;
  const bd = b.data as Numeric;
  if (ad.length === n && bd.length === n) {
    for (let i = 0; i < n; i++) out[i] = f(ad[i]!, bd[i]!);
  } else if (bd.length === 1) {
    const y = bd[0]!;
    if (ad.length === n) { for (let i = 0; i < n; i++) out[i] = f(ad[i]!, y); }
    else for (let i = 0; i < n; i++) out[i] = f(ad[0]!, y);
  } else if (ad.length === 1) {
    const x = ad[0]!;
    for (let i = 0; i < n; i++) out[i] = f(x, bd[i]!);
  } else {
    const as = broadcastStrides(a.shape, outShape);
    const bs = broadcastStrides(b.shape, outShape);
    const rank = outShape.length;
    const inner = outShape[rank - 1]!;
    const ai = as[rank - 1]!;
    const bi = bs[rank - 1]!;
    const idx = new Array<number>(rank).fill(0);
    let ao = 0;
    let bo = 0;
    for (let o = 0; o < n; o += inner) {
      for (let k = 0; k < inner; k++) out[o + k] = f(ad[ao + k * ai]!, bd[bo + k * bi]!);
      for (let ax = rank - 2; ax >= 0; ax--) {
        idx[ax]!++;
        ao += as[ax]!;
        bo += bs[ax]!;
        if (idx[ax]! < outShape[ax]!) break;
        ao -= as[ax]! * outShape[ax]!;
        bo -= bs[ax]! * outShape[ax]!;
        idx[ax] = 0;
      }
    }
  }
  return finish(tensor(dtype, outShape, out));
}

/** Folds `f` element-wise over the known contents of `a` and `b`, if both are known. */
export function foldBinary(
  a: Fact,
  b: Fact,
  outShape: readonly Dim[],
  f: (x: Dim, y: Dim) => Dim | null,
): Dim[] | undefined {
  const ad = knownDims(a);
  const bd = knownDims(b);
  const shape = concreteShape(outShape);
  if (!ad || !bd || !shape) return undefined;
  const as = broadcastStrides(a.shape as number[], shape);
  const bs = broadcastStrides(b.shape as number[], shape);
  const n = volume(shape);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    let rest = i;
    let ao = 0;
    let bo = 0;
    for (let ax = shape.length - 1; ax >= 0; ax--) {
      const c = rest % shape[ax]!;
      rest = Math.floor(rest / shape[ax]!);
      ao += c * as[ax]!;
      bo += c * bs[ax]!;
    }
    const r = f(ad[ao]!, bd[bo]!);
    if (r === null) return undefined;
    out.push(r);
  }
  return out;
}

/** Normalises a possibly negative axis of a rank-`rank` tensor. */
export function axisOf(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    throw new RangeError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

/** Copies `t` with a new shape of the same volume (no data copy). */
export function withShape(t: Tensor, shape: readonly number[]): Tensor {
  return { dtype: t.dtype, shape: [...shape], data: t.data };
}

/** Item storage of `t` as a numeric array. */
export function numeric(t: Tensor): Numeric {
  if (t.dtype === "string" || t.dtype === "q40") {
    throw new TypeError(`Expected a numeric tensor, got ${t.dtype}`);
  }
  return t.data as Numeric;
}

/** A tensor read through strides (a view into a larger buffer, e.g. the runtime's KV cache). */
export interface StridedTensor extends Tensor {
  readonly strides: readonly number[];
  readonly offset: number;
}

export function isStrided(t: Tensor): t is StridedTensor {
  return "strides" in t;
}

/**
 * `data` read through `strides` from `offset`: a plain tensor when that is its row-major order
 * (no copy to make later), else a {@link StridedTensor}.
 */
export function stridedView(
  dtype: DType,
  shape: readonly number[],
  data: Tensor["data"],
  strides: readonly number[],
  offset: number,
): Tensor {
  if (offset === 0 && data.length === volume(shape) && isRowMajor(shape, strides)) {
    return { dtype, shape: [...shape], data };
  }
  const view: StridedTensor = { dtype, shape: [...shape], data, strides: [...strides], offset };
  return view;
}

/** True when `strides` walk `shape` in row-major order (unit axes may have any stride). */
function isRowMajor(shape: readonly number[], strides: readonly number[]): boolean {
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] === 1) continue;
    if (strides[i] !== step) return false;
    step *= shape[i]!;
  }
  return true;
}

/** A row-major copy of a strided tensor (other tensors are returned as they are). */
export function contiguous(t: Tensor): Tensor {
  if (!isStrided(t)) return t;
  const n = volume(t.shape);
  const src = t.data as Float32Array;
  const out = new (src.constructor as new (n: number) => Float32Array)(n);
  const rank = t.shape.length;
  if (n === 0) return tensor(t.dtype, t.shape, out);
  const inner = t.shape[rank - 1] ?? 1;
  const innerStride = t.strides[rank - 1] ?? 1;
  const idx = new Array<number>(rank).fill(0);
  let off = t.offset;
  for (let o = 0; o < n; o += inner) {
    if (innerStride === 1 && !Array.isArray(src)) out.set(src.subarray(off, off + inner), o);
    else for (let k = 0; k < inner; k++) out[o + k] = src[off + k * innerStride]!;
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]!++;
      off += t.strides[ax]!;
      if (idx[ax]! < t.shape[ax]!) break;
      off -= t.strides[ax]! * t.shape[ax]!;
      idx[ax] = 0;
    }
  }
  return tensor(t.dtype, t.shape, out);
}
