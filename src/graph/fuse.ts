/**
 * The compile step: finds, by op pattern (never by name), the subgraphs torch_to_nnef leaves
 * in a transformer export and replaces each by one fused call (`src/ops/fused_*.ts`):
 *
 * - RMSNorm: `sqr -> mean_reduce(last axis) -> add eps -> rsqrt -> mul x [-> mul weight]`;
 * - rotate-half RoPE: `x*cos + concat([-x[d/2:], x[:d/2]], last)*sin`;
 * - SiLU gate: `x*sigmoid(x) * up`;
 * - attention: `softmax(einsum(q,kᵀ)*scale + mask)·v` (the t2n fragment) or
 *   `tract_transformers_sdpa`, with K and V taken before the grouped-query repeat
 *   (`unsqueeze -> tile -> reshape`), so that query head h reads kv head ⌊h / group⌋ of the
 *   (runtime-owned) cache directly.
 *
 * Every match checks the ops, their attributes and the facts (shapes) that make the rewrite
 * exact; the inner nodes are then pruned by the executor unless something else reads them.
 * Identity casts and copies are looked through.
 */
import type { Tensor } from "../tensor/tensor.ts";
import { type Dim, dimEquals } from "../tensor/dim.ts";
import type { FusedCall } from "./steps.ts";
import {
  argTensorIds,
  type AttrTemplate,
  identityInput,
  type Node,
  resolveAttr,
  throughIdentities,
} from "./graph.ts";
import type { Model } from "./model.ts";
import type { AttrValue } from "../ops/args.ts";
import { FusedRmsNorm } from "../ops/fused_rms_norm.ts";
import { fusedRope } from "../ops/fused_rope.ts";
import { fusedSiluGate } from "../ops/fused_silu_gate.ts";
import { causalKey, fusedAttention, fusedAttentionMany } from "../ops/fused_attention.ts";
import { asF32 } from "../ops/matmul.ts";
import type { RowAxis } from "./row_axes.ts";

/** The rows' axis of `x` when it is not `x`'s last (the axis the op works along). */
function rowsBeforeLast(axes: readonly RowAxis[], rank: number): number | null {
  const a = axes[0];
  return typeof a === "number" && a < rank - 1 ? a : null;
}

/** The common row axis of inputs stacking rows (the others shared with a unit dim there). */
function commonRowAxis(
  axes: readonly RowAxis[],
  shapes: readonly (readonly Dim[])[],
): number | null {
  const first = axes[0];
  if (typeof first !== "number") return null;
  const ok = axes.every((a, i) => a === first || (a === "same" && shapes[i]![first] === 1));
  return ok && first < shapes[0]!.length - 1 ? first : null;
}

/** What {@link fuseGraph} found, by kind. */
export interface FusionCounts {
  /** RMSNorm subgraphs fused. */
  rmsNorm: number;
  /** Rotary embeddings fused. */
  rope: number;
  /** SiLU-gated products fused. */
  siluGate: number;
  /** Attention blocks fused. */
  attention: number;
}

/** A kind of fusion. */
export type FusionKind = keyof FusionCounts;

/** Options of {@link fuseGraph}. */
export interface FuseOptions {
  /** Only these fusions (default all). */
  readonly only?: readonly FusionKind[];
}

/** The fused calls of a model, by the id of the node each replaces. */
export interface Fusion {
  /** For `ExecutorOptions.fused`. */
  readonly calls: Map<number, FusedCall>;
  /** How many of each kind were found. */
  readonly counts: FusionCounts;
}

class Graph {
  readonly model: Model;
  /** Value id -> nodes reading it (after looking through identities). */
  readonly readers = new Map<number, Node[]>();

  constructor(model: Model) {
    this.model = model;
    for (const node of model.nodes) {
      if (identityInput(this.model, node) !== null) continue;
      for (const id of [...node.args.values()].flatMap(argTensorIds)) {
        const r = this.resolve(id);
        const list = this.readers.get(r) ?? [];
        list.push(node);
        this.readers.set(r, list);
      }
    }
  }

  /** The value `id` stands for, through casts to its own type and copies. */
  resolve(id: number): number {
    return throughIdentities(this.model, id);
  }

  /** The node producing `id` (through identities) if it is one of `names`. */
  producer(id: number, ...names: string[]): Node | null {
    const p = this.model.values[this.resolve(id)]!.producer;
    if (p === null) return null;
    const node = this.model.nodes[p]!;
    return names.includes(node.name) ? node : null;
  }

  shape(id: number): readonly Dim[] {
    return this.model.values[id]!.fact.shape;
  }

  constant(id: number): Tensor | null {
    return this.model.values[this.resolve(id)]!.fact.value ?? null;
  }

  /** The integer items of attribute `name`, when known at load time. */
  ints(node: Node, name: string): number[] | null {
    const a = node.args.get(name);
    if (a?.kind !== "attr") return null;
    const lookup = (id: number): AttrValue => {
      const f = this.model.values[id]!.fact;
      if (f.value) {
        const items = Array.from(f.value.data as Float64Array);
        return f.value.shape.length === 0 ? items[0]! : items;
      }
      if (f.dims && f.dims.every((d) => typeof d === "number")) {
        return f.shape.length === 0 ? f.dims[0] as number : f.dims as number[];
      }
      return null;
    };
    const v = resolveAttr(a.value as AttrTemplate, lookup);
    const flat = Array.isArray(v) ? v.flat(4) : [v];
    return flat.every((x) => typeof x === "number") ? flat as number[] : null;
  }

  str(node: Node, name: string): string | null {
    const a = node.args.get(name);
    return a?.kind === "attr" && typeof a.value === "string" ? a.value : null;
  }

  /** The only reader of `id`, or null. */
  soleReader(id: number): Node | null {
    const r = this.readers.get(this.resolve(id)) ?? [];
    const isOutput = this.model.outputs.some((o) => this.resolve(o.id) === this.resolve(id));
    return r.length === 1 && !isOutput ? r[0]! : null;
  }
}

function binary(node: Node): [number, number] | null {
  const x = node.args.get("x");
  const y = node.args.get("y");
  return x?.kind === "tensor" && y?.kind === "tensor" ? [x.id, y.id] : null;
}

function tensorArg(node: Node, name: string): number | null {
  const a = node.args.get(name);
  return a?.kind === "tensor" ? a.id : null;
}

function sameShape(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => dimEquals(d, b[i]!));
}

function isF32(g: Graph, ...ids: number[]): boolean {
  return ids.every((id) => g.model.values[id]!.fact.dtype === "f32");
}

function lastAxis(axes: number[] | null, rank: number): boolean {
  return axes !== null && axes.length === 1 && (axes[0] === rank - 1 || axes[0] === -1);
}

/** A mul(x, rsqrt(add(mean_reduce(sqr(x), last), eps))): returns x and eps. */
function matchRmsCore(g: Graph, mul: Node): { x: number; eps: number } | null {
  const ops = binary(mul);
  if (!ops) return null;
  for (const [x, r] of [ops, [ops[1], ops[0]] as [number, number]]) {
    const rsqrt = g.producer(r, "rsqrt");
    const add = rsqrt && g.producer(tensorArg(rsqrt, "x")!, "add");
    const addOps = add && binary(add);
    if (!addOps) continue;
    for (const [m, e] of [addOps, [addOps[1], addOps[0]] as [number, number]]) {
      const mean = g.producer(m, "mean_reduce");
      const eps = g.constant(e);
      if (!mean || !eps || eps.data.length !== 1) continue;
      const sq = g.producer(tensorArg(mean, "input")!, "sqr");
      if (!sq || g.resolve(tensorArg(sq, "x")!) !== g.resolve(x)) continue;
      const rank = g.shape(x).length;
      if (!lastAxis(g.ints(mean, "axes"), rank) || !isF32(g, x)) continue;
      if (!sameShape(g.shape(mul.outputs[0]!), g.shape(x))) continue;
      return { x: g.resolve(x), eps: (eps.data as Float32Array)[0]! };
    }
  }
  return null;
}

function fuseRmsNorm(g: Graph, calls: Map<number, FusedCall>): number {
  let n = 0;
  for (const mul of g.model.nodes) {
    if (mul.name !== "mul" || calls.has(mul.id)) continue;
    const core = matchRmsCore(g, mul);
    if (!core) continue;
    const out = mul.outputs[0]!;
    const shape = g.shape(core.x);
    const d = shape[shape.length - 1]!;
    // Fold a following mul by a constant weight along the last axis.
    const next = g.soleReader(out);
    const nextOps = next?.name === "mul" ? binary(next) : null;
    let anchor = mul;
    let weight: Float32Array | null = null;
    if (next && nextOps && typeof d === "number") {
      const w = g.resolve(nextOps[0]) === g.resolve(out) ? nextOps[1] : nextOps[0];
      const wt = g.constant(w);
      if (
        wt && wt.dtype === "f32" && wt.data.length === d && wt.shape.length <= shape.length &&
        wt.shape[wt.shape.length - 1] === d && sameShape(g.shape(next.outputs[0]!), shape)
      ) {
        anchor = next;
        weight = asF32(wt);
      }
    }
    const norm = new FusedRmsNorm(core.eps, weight);
    calls.set(anchor.id, {
      node: anchor.id,
      inputs: [core.x],
      eval: ([x], ctx) => norm.eval(x!, ctx),
      rowAxis: (axes) => rowsBeforeLast(axes, shape.length),
    });
    n++;
  }
  return n;
}

/** slice(x, last axis, begin..begin+d/2, stride 1): returns x. */
function halfSlice(g: Graph, id: number, begin: number, d: number): number | null {
  const s = g.producer(id, "slice");
  const input = s && tensorArg(s, "input");
  if (!s || input === null) return null;
  const rank = g.shape(input).length;
  const b = g.ints(s, "begin");
  const stride = s.args.has("stride") ? g.ints(s, "stride") : [];
  const out = g.shape(s.outputs[0]!);
  if (!lastAxis(g.ints(s, "axes"), rank) || !b || b[0] !== begin) return null;
  if (stride === null || stride.some((v) => v !== 1)) return null;
  if (out[rank - 1] !== d / 2) return null;
  return g.resolve(input);
}

function fuseRope(g: Graph, calls: Map<number, FusedCall>): number {
  let n = 0;
  for (const add of g.model.nodes) {
    const ops = add.name === "add" ? binary(add) : null;
    if (!ops || calls.has(add.id)) continue;
    for (const [a, b] of [ops, [ops[1], ops[0]] as [number, number]]) {
      const m1 = g.producer(a, "mul");
      const m2 = g.producer(b, "mul");
      const o1 = m1 && binary(m1);
      const o2 = m2 && binary(m2);
      if (!o1 || !o2) continue;
      let found: FusedCall | null = null;
      for (const [rot, sin] of [o2, [o2[1], o2[0]] as [number, number]]) {
        const cat = g.producer(rot, "concat");
        const values = cat?.args.get("values");
        if (!cat || values?.kind !== "tensors" || values.ids.length !== 2) continue;
        const neg = g.producer(values.ids[0]!, "neg");
        if (!neg) continue;
        const shape = g.shape(cat.outputs[0]!);
        const rank = shape.length;
        const d = shape[rank - 1];
        const axis = g.ints(cat, "axis");
        if (typeof d !== "number" || d % 2 !== 0 || !lastAxis(axis, rank)) continue;
        const x2 = halfSlice(g, tensorArg(neg, "x")!, d / 2, d);
        const x1 = halfSlice(g, values.ids[1]!, 0, d);
        if (x1 === null || x1 !== x2) continue;
        for (const [x, cos] of [o1, [o1[1], o1[0]] as [number, number]]) {
          if (g.resolve(x) !== x1) continue;
          const xs = g.shape(x1);
          const fits = (c: number): boolean =>
            g.shape(c).length === rank &&
            g.shape(c).every((v, i) => v === 1 || dimEquals(v, xs[i]!));
          if (!fits(cos) || !fits(sin) || !isF32(g, x1, cos, sin)) continue;
          if (!sameShape(g.shape(add.outputs[0]!), xs)) continue;
          const [c, s] = [g.resolve(cos), g.resolve(sin)];
          const shapes = [xs, g.shape(c), g.shape(s)];
          found = {
            node: add.id,
            inputs: [x1, c, s],
            kernelReads: [c, s],
            eval: ([xt, ct, st], ctx) => fusedRope(xt!, ct!, st!, ctx),
            rowAxis: (axes) => commonRowAxis(axes, shapes),
          };
          break;
        }
        if (found) break;
      }
      if (found) {
        calls.set(add.id, found);
        n++;
        break;
      }
    }
  }
  return n;
}

/** x*sigmoid(x) (or a silu op): returns x. */
function siluOf(g: Graph, id: number): number | null {
  const s = g.producer(id, "tract_core_silu", "tract_transformers_silu");
  if (s) return g.resolve(tensorArg(s, "input") ?? tensorArg(s, "x")!);
  const m = g.producer(id, "mul");
  const ops = m && binary(m);
  if (!ops) return null;
  for (const [x, sg] of [ops, [ops[1], ops[0]] as [number, number]]) {
    const sig = g.producer(sg, "sigmoid");
    if (sig && g.resolve(tensorArg(sig, "x")!) === g.resolve(x)) return g.resolve(x);
  }
  return null;
}

function fuseSiluGate(g: Graph, calls: Map<number, FusedCall>): number {
  let n = 0;
  for (const mul of g.model.nodes) {
    const ops = mul.name === "mul" ? binary(mul) : null;
    if (!ops || calls.has(mul.id)) continue;
    for (const [s, up] of [ops, [ops[1], ops[0]] as [number, number]]) {
      const x = siluOf(g, s);
      if (x === null) continue;
      const shape = g.shape(x);
      if (!sameShape(g.shape(up), shape) || !sameShape(g.shape(mul.outputs[0]!), shape)) continue;
      if (!isF32(g, x, up)) continue;
      const u = g.resolve(up);
      calls.set(mul.id, {
        node: mul.id,
        inputs: [x, u],
        eval: ([a, b], ctx) => fusedSiluGate(a!, b!, ctx),
        rowAxis: ([a, b]) => typeof a === "number" && a === b ? a : null,
      });
      n++;
      break;
    }
  }
  return n;
}

/**
 * K or V before the grouped-query repeat: reshape* <- tile(repeats 1,1,g,1,1) <-
 * unsqueeze(axis 2) <- kv (B, Hk, L, D), checked on the facts. Returns the id to read.
 */
function beforeRepeat(g: Graph, id: number): number {
  const want = g.shape(id);
  let cur = g.resolve(id);
  let node = g.producer(cur, "reshape");
  while (node) {
    cur = g.resolve(tensorArg(node, "input")!);
    node = g.producer(cur, "reshape");
  }
  const tile = g.producer(cur, "tile");
  const unsq = tile && g.producer(tensorArg(tile, "input")!, "unsqueeze");
  if (!tile || !unsq) return g.resolve(id);
  const base = g.resolve(tensorArg(unsq, "input")!);
  const b = g.shape(base);
  const u = g.shape(unsq.outputs[0]!);
  const t = g.shape(tile.outputs[0]!);
  const axes = g.ints(unsq, "axes");
  if (b.length !== 4 || want.length !== 4 || !axes || axes.length !== 1 || axes[0] !== 2) {
    return g.resolve(id);
  }
  const group = t[2];
  const ok = u[2] === 1 && typeof group === "number" &&
    [0, 1, 3, 4].every((i) => dimEquals(t[i]!, b[i < 2 ? i : i - 1]!)) &&
    typeof b[1] === "number" && want[1] === b[1] * group &&
    [0, 2, 3].every((i) => dimEquals(want[i]!, b[i]!));
  return ok ? base : g.resolve(id);
}

/** The einsum expression with letters renamed in order of appearance. */
function canonical(expr: string): string {
  const names = new Map<string, string>();
  return expr.replace(/\s/g, "").replace(/[A-Za-z]/g, (c) => {
    if (!names.has(c)) names.set(c, String.fromCharCode(97 + names.size));
    return names.get(c)!;
  });
}

function attentionCall(
  g: Graph,
  node: Node,
  q: number,
  k: number,
  v: number,
  mask: number | null,
  scale: number,
): FusedCall | null {
  const [qs, ks, vs] = [g.shape(q), g.shape(k), g.shape(v)];
  if (qs.length !== 4 || ks.length !== 4 || vs.length !== 4) return null;
  if (!isF32(g, q, k, v) || (mask !== null && !isF32(g, mask))) return null;
  if (mask !== null && g.shape(mask).length > 4) return null;
  const kb = beforeRepeat(g, k);
  const vb = beforeRepeat(g, v);
  const [kbs, vbs] = [g.shape(kb), g.shape(vb)];
  if (!dimEquals(kbs[1]!, vbs[1]!) || !dimEquals(kbs[2]!, vbs[2]!)) return null;
  const [h, hk] = [qs[1], kbs[1]];
  if (typeof h !== "number" || typeof hk !== "number" || hk === 0 || h % hk !== 0) return null;
  const inputs = [g.resolve(q), kb, vb, ...(mask === null ? [] : [g.resolve(mask)])];
  return {
    node: node.id,
    inputs,
    eval: ([qt, kt, vt, mt], ctx) => fusedAttention(qt!, kt!, vt!, mt ?? null, scale, ctx),
    // With kernels, attention reads of the mask only whether it is causal.
    standIn: (index) => (index === 3 ? causalKey : undefined),
    evalEach: (each, ctxs) =>
      fusedAttentionMany(
        each.map(([qt, kt, vt, mt]) => ({ q: qt!, k: kt!, v: vt!, mask: mt ?? null })),
        scale,
        ctxs,
      ),
  };
}

function fuseAttention(g: Graph, calls: Map<number, FusedCall>): number {
  let n = 0;
  for (const node of g.model.nodes) {
    let call: FusedCall | null = null;
    if (node.name === "tract_transformers_sdpa") {
      const q = tensorArg(node, "q");
      const k = tensorArg(node, "k");
      const v = tensorArg(node, "v");
      const mask = tensorArg(node, "mask");
      const causal = node.args.get("is_causal");
      if (q === null || k === null || v === null) continue;
      if (causal?.kind === "attr" && causal.value === true) continue;
      if (mask !== null && g.model.values[mask]!.fact.shape.length === 0) continue;
      const sc = node.args.get("scale");
      const d = g.shape(q)[3];
      let scale: number;
      if (sc?.kind === "attr" && typeof sc.value === "number") scale = sc.value;
      else if (
        (sc === undefined || (sc.kind === "attr" && sc.value === null)) && typeof d === "number"
      ) {
        scale = 1 / Math.sqrt(d);
      } else continue;
      call = attentionCall(g, node, q, k, v, mask, scale);
    } else if (node.name === "tract_core_einsum") {
      const ins = node.args.get("inputs");
      if (ins?.kind !== "tensors" || ins.ids.length !== 2) continue;
      if (canonical(g.str(node, "expr") ?? "") !== "abcd,abde->abce") continue;
      const soft = g.producer(ins.ids[0]!, "softmax");
      if (!soft || !lastAxis(g.ints(soft, "axes"), 4)) continue;
      let scores = tensorArg(soft, "x")!;
      let mask: number | null = null;
      const add = g.producer(scores, "add");
      const addOps = add && binary(add);
      if (addOps) {
        const mi = g.producer(addOps[0], "mul") ? 1 : 0;
        mask = addOps[mi]!;
        scores = addOps[1 - mi]!;
        // NNEF broadcasting pads missing axes at the end, the fused op at the front: same rank.
        if (g.shape(mask).length !== 4) continue;
        if (!sameShape(g.shape(add!.outputs[0]!), g.shape(scores))) continue;
      }
      const mul = g.producer(scores, "mul");
      const mulOps = mul && binary(mul);
      if (!mulOps) continue;
      for (const [dot, s] of [mulOps, [mulOps[1], mulOps[0]] as [number, number]]) {
        const e1 = g.producer(dot, "tract_core_einsum");
        const st = g.constant(s);
        const e1in = e1?.args.get("inputs");
        if (!e1 || !st || st.data.length !== 1 || e1in?.kind !== "tensors") continue;
        if (canonical(g.str(e1, "expr") ?? "") !== "abcd,abed->abce" || e1in.ids.length !== 2) {
          continue;
        }
        if (!sameShape(g.shape(mul!.outputs[0]!), g.shape(dot))) continue;
        const scale = (st.data as Float32Array)[0]!;
        call = attentionCall(g, node, e1in.ids[0]!, e1in.ids[1]!, ins.ids[1]!, mask, scale);
        break;
      }
    }
    if (call) {
      calls.set(node.id, call);
      n++;
    }
  }
  return n;
}

/**
 * Finds the fusable subgraphs of `model` (see the module comment) and returns the fused
 * calls to give to an `Executor`.
 */
export function fuseGraph(model: Model, options: FuseOptions = {}): Fusion {
  const g = new Graph(model);
  const calls = new Map<number, FusedCall>();
  const on = (k: FusionKind): boolean => !options.only || options.only.includes(k);
  const attention = on("attention") ? fuseAttention(g, calls) : 0;
  const rope = on("rope") ? fuseRope(g, calls) : 0;
  const siluGate = on("siluGate") ? fuseSiluGate(g, calls) : 0;
  const rmsNorm = on("rmsNorm") ? fuseRmsNorm(g, calls) : 0;
  return { calls, counts: { rmsNorm, rope, siluGate, attention } };
}
