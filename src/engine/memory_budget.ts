/**
 * The memory budget of a served model: given the limit, what the weights and the process
 * itself take, and what is left for KV caches.
 */
import { evalDim } from "../tensor/dim.ts";
import type { Model } from "../graph/model.ts";
import { volume } from "../tensor/tensor.ts";
import type { MemoryLimit } from "./memory_limit.ts";
import { findCachePairs } from "./session.ts";

/** What a model needs besides the KV caches, and what one position of a sequence costs. */
export interface MemoryNeeds {
  /** The model's name, for the message. */
  readonly model: string;
  /** Bytes of the weights, each held once. */
  readonly weightBytes: number;
  /** The process without the model: runtime, compiled code, kernels' buffers, JS heap. */
  readonly fixedBytes: number;
  /** Bytes of KV cache per position of one sequence (0 for a graph without a cache). */
  readonly kvBytesPerPosition: number;
  /** Positions of one sequence, or undefined when the graph sets no bound. */
  readonly contextLength: number | undefined;
  /**
   * The most bytes the weights and the KV caches may take together, whatever the limit (the
   * kernels' wasm32 memory), or undefined for none.
   */
  readonly addressSpaceBytes?: number;
}

/** A model admitted under a memory limit, and the KV budget it leaves. */
export interface MemoryPlan extends MemoryNeeds {
  /** The limit the plan was made under. */
  readonly limit: MemoryLimit;
  /** Bytes left for KV caches: what the scheduler may hand out to sequences. */
  readonly kvBudgetBytes: number;
  /** Full-context sequences the KV budget holds at once (Infinity without a cache). */
  readonly sequences: number;
}

/** Resident bytes of a serving process beyond its JS heap and its model, measured on Linux. */
export const RUNTIME_BYTES = 112 * 2 ** 20;
/** Resident bytes each kernel worker thread adds. */
export const WORKER_BYTES = 12 * 2 ** 20;

/**
 * The fixed overhead of this process: the runtime and compiled code, `workers` kernel
 * threads, and the JS heap as it is now (the tokenizer's tables take most of it).
 */
export function fixedOverheadBytes(
  workers: number,
  heapBytes: number = Deno.memoryUsage().heapTotal,
): number {
  return RUNTIME_BYTES + workers * WORKER_BYTES + heapBytes;
}

/**
 * Bytes of KV cache one position of a sequence takes: every cache input of the graph with
 * its past axis at 1, in `itemBytes` per item (the paged pool's default f16: 2).
 */
export function kvBytesPerPosition(model: Model, itemBytes = 2): number {
  let bytes = 0;
  for (const pair of findCachePairs(model)) {
    const fact = model.input(pair.input)!.fact;
    const dims = fact.shape.map((d, axis) => axis === pair.axis ? 1 : evalDim(d, new Map()));
    bytes += volume(dims) * itemBytes;
  }
  return bytes;
}

/**
 * Admits a model under `limit`: the weights, the fixed overhead and the KV cache of one
 * full-context sequence must fit, and what is left after the weights and the overhead is
 * the KV budget.
 *
 * @throws {RangeError} when the model does not fit, saying what takes how much and what to do
 */
export function planMemory(limit: MemoryLimit, needs: MemoryNeeds): MemoryPlan {
  const perSequence = needs.contextLength === undefined
    ? needs.kvBytesPerPosition
    : needs.kvBytesPerPosition * needs.contextLength;
  const left = limit.bytes - needs.fixedBytes - needs.weightBytes;
  const room = needs.addressSpaceBytes === undefined
    ? left
    : Math.min(left, needs.addressSpaceBytes - needs.weightBytes);
  if (room < perSequence) {
    const sequence = needs.contextLength === undefined
      ? "one position"
      : `one ${needs.contextLength}-token sequence`;
    const total = needs.weightBytes + needs.fixedBytes + perSequence;
    const where = left < perSequence
      ? `the ${mib(limit.bytes)} memory limit (${limit.from})`
      : `the ${mib(needs.addressSpaceBytes!)} wasm32 memory of the kernels`;
    throw new RangeError(
      `Model '${needs.model}' does not fit in ${where}: it needs ${mib(total)}, that is ` +
        `${mib(needs.weightBytes)} of weights + ${mib(perSequence)} of KV cache for ${sequence} ` +
        `(${needs.kvBytesPerPosition} bytes per position) + ${
          mib(needs.fixedBytes)
        } for the process itself; ` +
        (left < perSequence
          ? "raise the limit (deploy.runtime.memoryLimit in deno.json on Deno Deploy, or " +
            "RILL_MEMORY_LIMIT) or serve a smaller model"
          : "serve a smaller model"),
    );
  }
  return {
    ...needs,
    limit,
    kvBudgetBytes: room,
    sequences: perSequence === 0 ? Infinity : Math.floor(room / perSequence),
  };
}

/** `bytes` in MiB, for messages. */
export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`;
}
