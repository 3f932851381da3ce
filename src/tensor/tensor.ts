import { allocData, type DType, type TensorData } from "./dtype.ts";

/**
 * A dense row-major tensor. For `q40` the shape is the logical one and `data` holds
 * the 18-byte GGML blocks of the flattened tensor.
 */
export interface Tensor {
  /** The item type. */
  readonly dtype: DType;
  /** The dims, outermost first. */
  readonly shape: readonly number[];
  /** The items in row-major order. */
  readonly data: TensorData;
}

export function volume(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function tensor(dtype: DType, shape: readonly number[], data?: TensorData): Tensor {
  const count = dtype === "q40" ? (volume(shape) / 32) * 18 : volume(shape);
  const stored = data ?? allocData(dtype, count);
  if (stored.length !== count) {
    throw new RangeError(
      `Cannot build ${dtype} tensor of shape [${
        shape.join(", ")
      }]: expected ${count} items, received ${stored.length}`,
    );
  }
  return { dtype, shape: [...shape], data: stored };
}

/** Row-major strides of `shape`, in items. */
export function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i]!;
  }
  return out;
}

export function scalar(dtype: DType, value: number): Tensor {
  const t = tensor(dtype, []);
  (t.data as Float32Array | Float64Array | Uint8Array)[0] = value;
  return t;
}
