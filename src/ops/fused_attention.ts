/**
 * Fused scaled dot-product attention with grouped-query heads:
 * out = softmax(q·kᵀ·scale + mask)·v, where query head h reads kv head ⌊h / group⌋ directly
 * (the graph's repeat of K and V — unsqueeze, tile, reshape — is not materialised). K and V
 * may be strided views; when they are the paged KV pool in the WASM kernels' memory and the
 * mask is the causal one, the kernel reads them in place.
 */
import { strides, type Tensor, tensor } from "../tensor/tensor.ts";
import { broadcastStrides, isStrided } from "./common.ts";
import { f32Items, headMajorView, kernelInts, kernelOffset, tokenMajorItems } from "./fused.ts";
import type { EvalContext } from "./op.ts";
import type { Kernels, RunArena } from "../../kernels/mod.ts";
import { isPaged, type PagedTensor } from "../tensor/paged.ts";
import { copyF32 } from "../tensor/dtype.ts";

/** A mask item at or below this is a dropped position (exp underflows to 0 in f32). */
const DROPPED = -1e30;

interface View {
  readonly data: Float32Array;
  readonly strides: readonly number[];
  readonly offset: number;
}

function viewOf(t: Tensor): View {
  if (isStrided(t) && t.data instanceof Float32Array) {
    return { data: t.data, strides: t.strides, offset: t.offset };
  }
  return { data: f32Items(t), strides: strides(t.shape), offset: 0 };
}

/**
 * The verdicts of `causalWindow` on the masks it has read, by their items: every layer of a run
 * reads the same mask (values are never written once computed).
 */
const causalMasks = new WeakMap<
  Float32Array,
  readonly [number, number, number, number, number | null]
>();

/**
 * What the paged kernel reads of mask (S, L): 0 when its items are 0 up to the causal diagonal
 * `L - S + i` and dropped after; w when, further, each row drops the positions w or more before
 * its own (a sliding window that the rows outgrew); null for any other mask.
 */
function causalWindow(
  mask: Float32Array,
  ms: readonly number[],
  s: number,
  l: number,
): number | null {
  const [rows, cols] = [ms[2]!, ms[3]!];
  const known = causalMasks.get(mask);
  if (known && known[0] === s && known[1] === l && known[2] === rows && known[3] === cols) {
    return known[4];
  }
  const window = readsWindow(mask, rows, cols, s, l);
  causalMasks.set(mask, [s, l, rows, cols, window]);
  return window;
}

/** A mask's shape with leading axes of 1 up to (B, H, S, L). */
function maskShape4(mask: Tensor): number[] {
  return [...new Array<number>(4 - mask.shape.length).fill(1), ...mask.shape];
}

/**
 * `"causal"` when `mask` (..., S, L) holds the causal mask of its S rows over L positions (0
 * up to the diagonal `L - S + i`, dropped after), `"window w"` when it is a sliding window of
 * w positions the rows outgrew, else null: what the paged kernel reads of a mask, for a replay
 * to check again (a sliding window looks causal until the sequence outgrows it).
 */
export function causalKey(mask: Tensor): string | null {
  const rank = mask.shape.length;
  if (rank < 2 || rank > 4) return null;
  const shape = maskShape4(mask);
  const [s, l] = [shape[2]!, shape[3]!];
  const window = causalWindow(f32Items(mask), broadcastStrides(shape, shape), s, l);
  return window === null ? null : window === 0 ? "causal" : `window ${window}`;
}

function readsWindow(
  mask: Float32Array,
  rowStride: number,
  colStride: number,
  s: number,
  l: number,
): number | null {
  // Each row sees one run of positions ending at its diagonal: where it starts.
  const starts: number[] = [];
  for (let i = 0; i < s; i++) {
    const last = l - s + i;
    let start = last + 1;
    while (start > 0 && mask[i * rowStride + (start - 1) * colStride] === 0) start--;
    if (start > last) return null;
    for (let j = 0; j < l; j++) {
      const m = mask[i * rowStride + j * colStride]!;
      if (j >= start && j <= last ? m !== 0 : !(m <= DROPPED)) return null;
    }
    starts.push(start);
  }
  // The rows that do not see position 0 tell the window; it must hold for every row.
  const cut = starts.findIndex((start) => start > 0);
  if (cut < 0) return 0;
  const window = l - s + cut - starts[cut]! + 1;
  return starts.every((start, i) => start === Math.max(0, l - s + i + 1 - window)) ? window : null;
}

/** A sequence's attention that the paged kernel can run: its query rows and shapes. */
interface PagedPlan {
  /** q's items, (H, S, D) or, when `tokenMajor`, (S, H, D). */
  readonly qs: Float32Array;
  readonly tokenMajor: boolean;
  readonly k: PagedTensor;
  readonly v: PagedTensor;
  readonly dims: Dims;
}

type AttentionShapes = ReturnType<typeof attentionShapes>;

/** The checked shapes of an attention call, and its mask's items and strides. */
function attentionShapes(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null) {
  const [B, H, S, D] = q.shape as [number, number, number, number];
  const [, Hk, L] = k.shape as [number, number, number, number];
  const Dv = v.shape[3]!;
  if (q.shape.length !== 4 || k.shape.length !== 4 || v.shape.length !== 4 || H % Hk !== 0) {
    throw new RangeError(`Attention of q [${q.shape}], k [${k.shape}], v [${v.shape}]`);
  }
  let ms: number[] = [0, 0, 0, 0];
  let mv: Float32Array | null = null;
  if (mask) {
    const mshape = maskShape4(mask);
    ms = broadcastStrides(mshape, [B, H, S, L]);
    mv = f32Items(mask);
  }
  return { B, H, S, D, Hk, L, Dv, ms, mv };
}

/** The paged kernel's plan for this call, or null when it must run in TS. */
function pagedPlan(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  { B, H, S, D, Hk, L, Dv, ms, mv }: AttentionShapes,
  scale: number,
  ctx: EvalContext,
): PagedPlan | null {
  const kern = ctx.kernels;
  if (
    kern && B === 1 && Dv === D && S > 0 && isPaged(k) && isPaged(v) &&
    k.paged.memory === kern.memory && v.paged.memory === kern.memory &&
    k.paged.table === v.paged.table
  ) {
    const window = mv ? causalWindow(mv, ms, S, L) : 0;
    if (window === null) return null;
    const rows = tokenMajorItems(q);
    const qs = rows ?? f32Items(q);
    return { qs, tokenMajor: rows !== null, k, v, dims: { H, Hk, S, L, D, scale, window } };
  }
  return null;
}

/**
 * q (B, H, S, D), k (B, Hk, L, D), v (B, Hk, L, Dv), mask broadcastable to (B, H, S, L) or
 * null -> (B, H, S, Dv).
 */
export function fusedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  scale: number,
  ctx: EvalContext,
): Tensor {
  const shapes = attentionShapes(q, k, v, mask);
  const plan = pagedPlan(q, k, v, shapes, scale, ctx);
  if (plan) return pagedAttention(ctx.kernels!, ctx.arena, [plan])[0]!;
  return tsAttention(q, k, v, shapes, scale);
}

/** `fusedAttention` in TS, over caches of any layout. */
function tsAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  { B, H, S, D, Hk, L, Dv, ms, mv }: AttentionShapes,
  scale: number,
): Tensor {
  const group = H / Hk;
  const qs = f32Items(q);
  const kv = viewOf(k);
  const vv = viewOf(v);
  const out = new Float32Array(B * H * S * Dv);
  const scores = new Float64Array(L);
  const f = Math.fround;
  const fscale = f(scale);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / group);
      const kBase = kv.offset + b * kv.strides[0]! + kh * kv.strides[1]!;
      const vBase = vv.offset + b * vv.strides[0]! + kh * vv.strides[1]!;
      const [kj, kd] = [kv.strides[2]!, kv.strides[3]!];
      const [vj, vd] = [vv.strides[2]!, vv.strides[3]!];
      for (let i = 0; i < S; i++) {
        const qo = ((b * H + h) * S + i) * D;
        let max = -Infinity;
        for (let j = 0; j < L; j++) {
          let dot = 0;
          const ko = kBase + j * kj;
          for (let d = 0; d < D; d++) dot += qs[qo + d]! * kv.data[ko + d * kd]!;
          let s = f(f(dot) * fscale);
          if (mv) s = f(s + mv[b * ms[0]! + h * ms[1]! + i * ms[2]! + j * ms[3]!]!);
          scores[j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = 0; j < L; j++) {
          const e = max === -Infinity ? 0 : Math.exp(scores[j]! - max);
          scores[j] = e;
          sum += e;
        }
        const oo = ((b * H + h) * S + i) * Dv;
        for (let d = 0; d < Dv; d++) {
          let acc = 0;
          for (let j = 0; j < L; j++) {
            const p = f(scores[j]! / sum);
            if (p !== 0) acc += p * vv.data[vBase + j * vj + d * vd]!;
          }
          out[oo + d] = acc;
        }
      }
    }
  }
  return tensor("f32", [B, H, S, Dv], out);
}

interface Dims {
  readonly H: number;
  readonly Hk: number;
  readonly S: number;
  readonly L: number;
  readonly D: number;
  readonly scale: number;
  /** Positions a row sees at most (a sliding window); 0: all. */
  readonly window: number;
}

/**
 * Several sequences' attention, each as `fusedAttention` gives it alone: those over paged
 * caches run as one kernel job (the threads share all their heads), the others one by one.
 */
export function fusedAttentionMany(
  calls: readonly { q: Tensor; k: Tensor; v: Tensor; mask: Tensor | null }[],
  scale: number,
  ctxs: readonly EvalContext[],
): Tensor[] {
  const shapes = calls.map(({ q, k, v, mask }) => attentionShapes(q, k, v, mask));
  const plans = calls.map(({ q, k, v }, i) => pagedPlan(q, k, v, shapes[i]!, scale, ctxs[i]!));
  const { kernels, arena } = ctxs[0] ?? {};
  const together = ctxs.every((c) => c.kernels === kernels && c.arena === arena);
  const paged = plans.filter((p) => p !== null);
  const results = together && kernels && paged.length > 0
    ? pagedAttention(kernels, arena, paged)
    : [];
  return calls.map(({ q, k, v }, i) => {
    const plan = plans[i];
    if (!plan) return tsAttention(q, k, v, shapes[i]!, scale);
    return together
      ? results.shift()!
      : pagedAttention(ctxs[i]!.kernels!, ctxs[i]!.arena, [plan])[0]!;
  });
}

/** Attention over caches read in place through their block tables (the paged KV pool). */
function pagedAttention(
  kern: Kernels,
  arena: RunArena | null | undefined,
  plans: readonly PagedPlan[],
): Tensor[] {
  const mark = kern.mark();
  try {
    const runs = plans.map(({ qs, tokenMajor, k, v, dims: { H, Hk, S, L, D, scale, window } }) => {
      const kp = k.paged;
      // The kernel takes rows by token: (S, H, D); the graph has (1, H, S, D).
      const qt = S === 1 || tokenMajor ? qs : transposeHS(qs, H, S, D);
      const table = kp.tableAt >= 0 ? kp.tableAt : kernelInts(kern, kp.table);
      // The result, rows of tokens (S, H, D), is returned as it lies: it stays in the run's arena.
      const kept = arena?.alloc(qt.length * 4) ?? null;
      const q = kernelOffset(kern, arena, qt);
      const out = kept ?? kern.alloc(qt.length * 4);
      const shape = {
        m: S,
        nHeads: H,
        nKvHeads: Hk,
        headDim: D,
        blockSize: kp.blockSize,
        kvLen: L,
        qPos0: L - S,
        scale,
        item: kp.itemType,
        runHeads: kp.runHeads,
        runStride: kp.runStride,
        window,
      };
      return { call: { q, out, kBase: kp.offset, vBase: v.paged.offset, table, shape }, kept };
    });
    kern.attentionPagedMany(runs.map((r) => r.call));
    return runs.map(({ call, kept }, i) => {
      const { H, S, D } = plans[i]!.dims;
      const n = S * H * D;
      const y = kept !== null ? arena!.view(kept, n) : copyF32(kern.f32(call.out, n));
      return headMajorView(y, H, S, D);
    });
  } finally {
    kern.reset(mark);
  }
}

/** (a, b, d) -> (b, a, d). */
function transposeHS(x: Float32Array, a: number, b: number, d: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) {
      y.set(x.subarray((i * b + j) * d, (i * b + j + 1) * d), (j * a + i) * d);
    }
  }
  return y;
}
