/**
 * A cache tensor read through a block table (the paged KV pool of `src/scheduler/kv_pool.ts`):
 * what the fused attention reads in place. Its `data` is a row-major f32 copy, gathered on
 * first read, for every other reader.
 */
import type { Tensor } from "./tensor.ts";

/** Where a paged cache tensor's positions lie. */
export interface PagedKv {
  /** Byte offset of the tensor's region in `memory`, or -1 when it is not there. */
  readonly offset: number;
  /** The memory holding the region (the kernels'), or null. */
  readonly memory: WebAssembly.Memory | null;
  /** Positions per block. */
  readonly blockSize: number;
  /** Item type of the stored positions. */
  readonly itemType: "f16" | "f32";
  /** Items before the past axis (kv heads). */
  readonly outer: number;
  /** Items after the past axis (head dim). */
  readonly inner: number;
  /** Outer indices (kv heads) per run of blocks (see `PagedAttentionShape`). */
  readonly runHeads: number;
  /** Bytes from one run of blocks to the next in the region. */
  readonly runStride: number;
  /** The sequence's block ids, in position order. */
  readonly table: readonly number[];
  /** Byte offset of the same ids in `memory`, where kernels read them in place; or -1. */
  readonly tableAt: number;
  /** Positions the view covers. */
  readonly length: number;
}

/** A tensor backed by a paged pool. */
export interface PagedTensor extends Tensor {
  /** Where its positions lie. */
  readonly paged: PagedKv;
  /** The same view over `by` more positions of its sequence (fewer when negative). */
  moved?(by: number): PagedTensor;
}

/** True when `t` is read through a block table. */
export function isPaged(t: Tensor): t is PagedTensor {
  return "paged" in t;
}
