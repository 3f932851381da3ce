/**
 * Runs the graph's `linear` nodes through the WASM kernels: each constant weight (Q4_0 or
 * f32) is read in place when it was loaded into these kernels' memory (`loadModel` with
 * `kernels`), else copied once into their weights region; each call quantizes the
 * activations to Q8_0 (for Q4_0 weights, as llama.cpp does) and multiplies there. The result
 * is close to, not bit-equal with, the TS reference path (Q8_0 activations round).
 *
 * This is the hook that fused ops use: a map of node id -> replacement evaluation, given to
 * the executor (`Executor.runBound`) or to a `Session` (`SessionOptions.kernels`).
 */
import type { Kernels, MatmulTarget, Q4Layout, RunArena } from "../../kernels/mod.ts";
import { kernelWeight, pendingWeight } from "./weights.ts";
import { type Tensor, volume } from "../tensor/tensor.ts";
import { binaryEval, contiguous } from "../ops/common.ts";
import { asF32, matmulEval } from "../ops/matmul.ts";
import { inArena } from "../ops/fused.ts";
import type { NodeOverride } from "./steps.ts";
import type { Model } from "./model.ts";
import { throughIdentities } from "./graph.ts";
import type { EvalContext } from "../ops/op.ts";

interface Slot {
  readonly kind: "q40" | "f32";
  readonly offset: number;
  readonly n: number;
  readonly k: number;
  readonly layout: Q4Layout;
}

function uploadWeight(kernels: Kernels, w: Tensor): Slot | null {
  const rank = w.shape.length;
  if (rank < 2 || w.shape.slice(0, rank - 2).some((d) => d !== 1)) return null;
  const n = w.shape[rank - 2]!;
  const k = w.shape[rank - 1]!;
  const placed = kernelWeight(w);
  if (placed && placed.kernels === kernels && (w.dtype === "f32" || k % 32 === 0)) {
    // Loaded into this memory: read in place (the layout is final once the weight arrived).
    return {
      kind: w.dtype as "q40" | "f32",
      offset: placed.offset,
      n,
      k,
      get layout() {
        return placed.layout;
      },
    };
  }
  if (pendingWeight(w)) {
    throw new TypeError(
      "A weight is still arriving into another memory: await model.weightsReady before creating a session over other kernels",
    );
  }
  if (w.dtype === "q40" && k % 32 === 0) {
    const bytes = w.data as Uint8Array;
    const slot = kernels.allocWeights(bytes.length);
    slot.bytes.set(bytes);
    // Interleave each group of 8 rows by block once, so decoding streams the weight in order.
    kernels.interleaveQ4_0Rows8(slot.offset, n, k);
    return { kind: "q40", offset: slot.offset, n, k, layout: "rows8" };
  }
  if (w.dtype === "f32") {
    const slot = kernels.allocWeights(n * k * 4);
    new Float32Array(kernels.memory.buffer, slot.offset, n * k).set(w.data as Float32Array);
    return { kind: "f32", offset: slot.offset, n, k, layout: "ggml" };
  }
  return null;
}

/**
 * y_i (m, n_i) = x (m, k) @ W_iᵀ for every slot (all of one kind and k) in the kernels' memory,
 * as one job: x is quantized once (Q4_0 weights) and the threads are handed the products
 * together. x and the y_i are read and left in `arena` when it holds them (see `inArena`).
 */
function kernelMatmuls(
  kernels: Kernels,
  arena: RunArena | null | undefined,
  slots: readonly Slot[],
  x: Float32Array,
  m: number,
): Float32Array[] {
  const k = slots[0]!.k;
  let total = 0;
  for (const s of slots) total += m * s.n;
  const all = inArena(kernels, arena, [x], total, ([xo], yo) => {
    const targets: MatmulTarget[] = [];
    let at = yo;
    for (const s of slots) {
      targets.push({ w: s.offset, y: at, n: s.n, layout: s.layout });
      at += m * s.n * 4;
    }
    if (slots[0]!.kind === "q40") {
      const xq = kernels.alloc(m * kernels.q8RowBytes(k)); // (m, k) as Q8_0
      kernels.quantizeQ8_0(xo!, xq, m, k);
      kernels.matmulQ4_0Q8_0Many(xq, m, k, targets);
    } else {
      kernels.matmulF32Many(xo!, m, k, targets);
    }
  });
  const outs: Float32Array[] = [];
  let at = 0;
  for (const s of slots) outs.push(all.subarray(at, at += m * s.n));
  return outs;
}

/** The overrides already built, per model and kernels: each session over them shares one upload. */
const built = new WeakMap<Model, WeakMap<Kernels, ReadonlyMap<number, NodeOverride>>>();

/**
 * Overrides for every `linear` node of `model` whose filter is a constant Q4_0 or f32
 * matrix (leading unit axes allowed). Uploads the weights on the first call for these kernels.
 */
export function kernelLinears(model: Model, kernels: Kernels): ReadonlyMap<number, NodeOverride> {
  let byKernels = built.get(model);
  if (!byKernels) built.set(model, byKernels = new WeakMap());
  const known = byKernels.get(kernels);
  if (known) return known;
  const overrides = linearOverrides(model, kernels);
  byKernels.set(kernels, overrides);
  return overrides;
}

/** Linears of one kind and depth that read the same input: run as one job. */
interface Group {
  readonly kernels: Kernels;
  readonly slots: Slot[];
  readonly weights: Tensor[];
  /** True once every member's weight has arrived. */
  allIn: boolean;
  /**
   * The outputs of the group's last run, by the context and input it ran for; a member whose
   * weight was still arriving then has none (it runs alone once the executor waited for it).
   */
  last: { ctx: EvalContext; input: Tensor; outs: (Float32Array | undefined)[] } | null;
}

/** The (..., n) tensor of a linear's output rows `out` for an input of `shape` (..., k). */
function linearOutput(shape: readonly number[], n: number, out: Float32Array): Tensor {
  const dims = shape.slice();
  dims[dims.length - 1] = n;
  return { dtype: "f32", shape: dims, data: out };
}

/**
 * Runs the products of `group` on input `given` (its rows `x`) as one job and keeps their
 * outputs for the other members; returns member `member`'s.
 */
function runGroup(
  group: Group,
  member: number,
  ctx: EvalContext,
  given: Tensor,
  x: Tensor,
): Float32Array {
  const m = volume(x.shape) / group.slots[0]!.k;
  if (group.allIn || group.weights.every((w) => !pendingWeight(w))) {
    group.allIn = true;
    const outs = kernelMatmuls(group.kernels, ctx.arena, group.slots, asF32(x), m);
    group.last = { ctx, input: given, outs };
    return outs[member]!;
  }
  // Only the members whose weights are in: the executor waits for each one's own.
  const ready = group.slots.map((_, i) => i === member || !pendingWeight(group.weights[i]!));
  const run = kernelMatmuls(
    group.kernels,
    ctx.arena,
    group.slots.filter((_, i) => ready[i]),
    asF32(x),
    m,
  );
  const outs = ready.map((r) => (r ? run.shift() : undefined));
  group.last = { ctx, input: given, outs };
  return outs[member]!;
}

function linearOverrides(model: Model, kernels: Kernels): Map<number, NodeOverride> {
  const overrides = new Map<number, NodeOverride>();
  const slots = new Map<Tensor, Slot | null>();
  const groups = new Map<string, Group>();
  for (const node of model.nodes) {
    if (node.name !== "linear") continue;
    const filter = node.args.get("filter");
    const input = node.args.get("input");
    if (filter?.kind !== "tensor" || input?.kind !== "tensor") continue;
    const w = model.values[filter.id]!.fact.value;
    if (!w || w.dtype === "f16") continue;
    if (!slots.has(w)) slots.set(w, uploadWeight(kernels, w));
    const slot = slots.get(w);
    if (!slot) continue;
    const key = `${throughIdentities(model, input.id)}:${slot.kind}:${slot.k}`;
    let group = groups.get(key);
    if (!group) {
      groups.set(key, group = { kernels, slots: [], weights: [], allIn: false, last: null });
    }
    const member = group.slots.push(slot) - 1;
    group.weights.push(w);
    const shared = group;
    let inPlace = false;
    overrides.set(node.id, (args, ctx) => {
      const given = args.tensor("input");
      const bias = args.tensor("bias");
      const b = bias.data as Float32Array;
      const noBias = b.length === 1 && b[0] === 0;
      // Another member of the group ran the job for this input: its output is ready.
      const last = shared.last;
      const done = last !== null && last.ctx === ctx && last.input === given
        ? last.outs[member]
        : undefined;
      if (done && noBias) return [linearOutput(given.shape, slot.n, done)];
      // Overrides are handed views as they are: a strided input is copied here.
      const x = contiguous(given); // (..., k)
      inPlace ||= slot.layout === "rows8" && kernelWeight(w) !== undefined;
      let y: Tensor;
      if (
        !inPlace && (x.dtype !== "f32" || x.shape[x.shape.length - 1] !== slot.k ||
          x.shape.length < w.shape.length)
      ) {
        y = matmulEval(x, args.tensor("filter"), false, true);
      } else {
        if (x.shape[x.shape.length - 1] !== slot.k) {
          throw new RangeError(`linear input has rows of ${x.shape.at(-1)}, the weight ${slot.k}`);
        }
        y = linearOutput(x.shape, slot.n, done ?? runGroup(shared, member, ctx, given, x));
      }
      if (noBias) return [y];
      return [binaryEval(y, bias, y.dtype, (p, q) => p + q)];
    });
  }
  return overrides;
}
