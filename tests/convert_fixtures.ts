/** Inputs the converter tests build in a temp dir: safetensors files and a reference forward pass. */
import { loadModel } from "../src/graph/load_model.ts";
import { Session } from "../src/engine/session.ts";
import { f16ToF32, f32ToF16 } from "../src/tensor/f16.ts";

/** Absolute path of a shared fixture, from the project root's `../shared/fixtures`. */
export function fixture(path: string): string {
  return new URL(`../../shared/fixtures/${path}`, import.meta.url).pathname;
}

/** Runs `fn` in a fresh temp dir, removed afterwards whatever `fn` did. */
export async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Deterministic uniform values in [-scale, scale) (mulberry32). */
export function randomValues(count: number, seed: number, scale: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = (2 * u - 1) * scale;
  }
  return out;
}

/** A tensor to write into a test input file. */
export interface TestTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

const SCRATCH = new Float32Array(1);
const SCRATCH_BITS = new Uint32Array(SCRATCH.buffer);

function bf16Bits(x: number): number {
  SCRATCH[0] = x;
  const u = SCRATCH_BITS[0]!;
  return (u + 0x7fff + ((u >> 16) & 1)) >>> 16;
}

/** Rounds values to what `dtype` stores, so a reference computes with the stored weights. */
export function storedValues(values: Float32Array, dtype: "F32" | "F16" | "BF16"): Float32Array {
  if (dtype === "F32") return values;
  const out = new Float32Array(values.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (dtype === "BF16") {
      bits[i] = bf16Bits(values[i]!) << 16;
    } else {
      out[i] = f16ToF32(f32ToF16(values[i]!));
    }
  }
  return out;
}

/** The bytes of a safetensors file holding `tensors` as `dtype`. */
export function safetensorsBytes(
  tensors: readonly TestTensor[],
  dtype: "F32" | "F16" | "BF16",
): Uint8Array {
  const itemBytes = dtype === "F32" ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let at = 0;
  for (const t of tensors) {
    header[t.name] = {
      dtype,
      shape: t.shape,
      data_offsets: [at, at + t.values.length * itemBytes],
    };
    at += t.values.length * itemBytes;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += " ";
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + at);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const t of tensors) {
    for (const v of t.values) {
      if (dtype === "F32") view.setFloat32(pos, v, true);
      else view.setUint16(pos, dtype === "F16" ? f32ToF16(v) : bf16Bits(v), true);
      pos += itemBytes;
    }
  }
  return out;
}

/** Sizes of the reference model. */
export interface ReferenceConfig {
  readonly hidden: number;
  readonly intermediate: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly vocab: number;
  readonly eps: number;
  readonly theta: number;
  readonly tied: boolean;
  readonly qkvBias?: boolean;
  /** Size of a head (default hidden / heads). */
  readonly headDim?: number;
  /** Each head of q and k RMS-normed before RoPE (Qwen3's `q_norm`, `k_norm`). */
  readonly qkNorm?: boolean;
  /** RoPE on adjacent pairs (2i, 2i+1), as llama.cpp applies it to GGUF's row order. */
  readonly ropeInterleaved?: boolean;
  /**
   * Gemma 3: norms of 1 + w, four a layer, GELU (tanh) gate, embeddings times √hidden, scores
   * times `queryScalar`^-½, and sliding layers that see `window` positions with RoPE base
   * `localTheta` (`qkNorm` too).
   */
  readonly gemma?: {
    readonly window: number;
    readonly sliding: readonly boolean[];
    readonly localTheta: number;
    readonly queryScalar: number;
  };
  /** Per layer, whether q and k are rotated (SmolLM3's `no_rope_layers`; default all). */
  readonly ropeLayers?: readonly boolean[];
  /**
   * Phi-3: RoPE turns the leading `rotaryDim` dims of each head, its frequencies divided by
   * `factors` and its cos and sin times `scale` (LongRoPE's short factors and attention factor).
   */
  readonly phi3?: {
    readonly rotaryDim: number;
    readonly factors: readonly number[];
    readonly scale: number;
  };
  /** Every layer sees the last `window` positions (Mistral's and Phi-3's `sliding_window`). */
  readonly window?: number;
  /**
   * Granite: embeddings times `embed`, scores times `attention` (not 1/√head_dim), residual
   * branches times `residual`, logits divided by `logits`.
   */
  readonly granite?: {
    readonly embed: number;
    readonly attention: number;
    readonly residual: number;
    readonly logits: number;
  };
}

/**
 * A plain forward pass of an HF Llama-family model in f64 over a whole sequence: RMSNorm,
 * (Qwen3: RMSNorm of each q and k head,) rotate-half RoPE, GQA causal attention, SiLU-gated
 * MLP (Gemma 3: see `ReferenceConfig.gemma`). Returns the logits of the last position.
 */
export function referenceLogits(
  c: ReferenceConfig,
  weights: ReadonlyMap<string, Float32Array>,
  ids: readonly number[],
): Float64Array {
  const w = (name: string): Float32Array => {
    const v = weights.get(name);
    if (v === undefined) throw new Error(`reference: no weight ${name}`);
    return v;
  };
  const d = c.hidden;
  const hd = c.headDim ?? d / c.heads;
  const qd = c.heads * hd;
  const n = ids.length;
  const matvec = (m: Float32Array, x: Float64Array, rows: number, bias?: Float32Array) => {
    const cols = x.length;
    const out = new Float64Array(rows); // (rows,)
    for (let r = 0; r < rows; r++) {
      let s = bias === undefined ? 0 : bias[r]!;
      for (let k = 0; k < cols; k++) s += m[r * cols + k]! * x[k]!;
      out[r] = s;
    }
    return out;
  };
  const offset = c.gemma ? 1 : 0;
  const rms = (x: Float64Array, weight: Float32Array) => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const scale = 1 / Math.sqrt(ss / x.length + c.eps);
    return x.map((v, i) => v * scale * (offset + weight[i]!));
  };
  /** Each head of `v` RMS-normed with `weight` (hd,), when the model norms q and k. */
  const headNorm = (v: Float64Array, heads: number, weight: string) => {
    if (!c.qkNorm) return v;
    const out = new Float64Array(v.length);
    for (let h = 0; h < heads; h++) {
      out.set(rms(v.subarray(h * hd, (h + 1) * hd), w(weight)), h * hd);
    }
    return out;
  };
  const rd = c.phi3?.rotaryDim ?? hd;
  const rope = (v: Float64Array, heads: number, pos: number, theta: number) => {
    const out = Float64Array.from(v);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < rd / 2; i++) {
        const freq = 1 / ((c.phi3?.factors[i] ?? 1) * Math.pow(theta, (2 * i) / rd));
        const cos = Math.cos(pos * freq) * (c.phi3?.scale ?? 1);
        const sin = Math.sin(pos * freq) * (c.phi3?.scale ?? 1);
        const [ia, ib] = c.ropeInterleaved
          ? [h * hd + 2 * i, h * hd + 2 * i + 1]
          : [h * hd + i, h * hd + i + rd / 2];
        const a = v[ia]!;
        const b = v[ib]!;
        out[ia] = a * cos - b * sin;
        out[ib] = b * cos + a * sin;
      }
    }
    return out;
  };
  const activation = c.gemma
    ? (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))
    : (v: number) => v / (1 + Math.exp(-v));
  const embed = w("model.embed_tokens.weight");
  const embedScale = c.gemma ? Math.sqrt(d) : c.granite?.embed ?? 1;
  const residual = c.granite?.residual ?? 1;
  let xs = ids.map((id) =>
    Float64Array.from(embed.subarray(id * d, (id + 1) * d), (v) => v * embedScale)
  );
  const kvd = c.kvHeads * hd;
  const scoreScale = c.granite?.attention ?? 1 / Math.sqrt(c.gemma?.queryScalar ?? hd);
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}`;
    const sliding = c.gemma?.sliding[l] === true;
    const theta = sliding ? c.gemma!.localTheta : c.theta;
    const positioned = (v: Float64Array, heads: number, t: number) =>
      c.ropeLayers?.[l] === false ? v : rope(v, heads, t, theta);
    const window = sliding ? c.gemma!.window : c.window;
    const first = window === undefined ? () => 0 : (t: number) => Math.max(0, t - window + 1);
    const bias = (name: string) => (c.qkvBias ? w(`${p}.self_attn.${name}.bias`) : undefined);
    const hs = xs.map((x) => rms(x, w(`${p}.input_layernorm.weight`)));
    const qs = hs.map((h, t) => {
      const q = matvec(w(`${p}.self_attn.q_proj.weight`), h, qd, bias("q_proj"));
      return positioned(headNorm(q, c.heads, `${p}.self_attn.q_norm.weight`), c.heads, t);
    });
    const ks = hs.map((h, t) => {
      const k = matvec(w(`${p}.self_attn.k_proj.weight`), h, kvd, bias("k_proj"));
      return positioned(headNorm(k, c.kvHeads, `${p}.self_attn.k_norm.weight`), c.kvHeads, t);
    });
    const vs = hs.map((h) => matvec(w(`${p}.self_attn.v_proj.weight`), h, kvd, bias("v_proj")));
    xs = xs.map((x, t) => {
      const ctx = new Float64Array(qd);
      for (let h = 0; h < c.heads; h++) {
        const g = Math.floor(h / (c.heads / c.kvHeads));
        const from = first(t);
        const scores = new Float64Array(t + 1 - from);
        for (let s = from; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qs[t]![h * hd + i]! * ks[s]![g * hd + i]!;
          scores[s - from] = dot * scoreScale;
        }
        const max = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - max));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let s = from; s <= t; s++) {
          for (let i = 0; i < hd; i++) {
            ctx[h * hd + i]! += (e[s - from]! / sum) * vs[s]![g * hd + i]!;
          }
        }
      }
      let o = matvec(w(`${p}.self_attn.o_proj.weight`), ctx, d);
      if (c.gemma) o = rms(o, w(`${p}.post_attention_layernorm.weight`));
      const r = x.map((v, i) => v + residual * o[i]!);
      const m = rms(
        r,
        w(`${p}.${c.gemma ? "pre_feedforward_layernorm" : "post_attention_layernorm"}.weight`),
      );
      const gate = matvec(w(`${p}.mlp.gate_proj.weight`), m, c.intermediate);
      const up = matvec(w(`${p}.mlp.up_proj.weight`), m, c.intermediate);
      const act = gate.map((gv, i) => activation(gv) * up[i]!);
      let down = matvec(w(`${p}.mlp.down_proj.weight`), act, d);
      if (c.gemma) down = rms(down, w(`${p}.post_feedforward_layernorm.weight`));
      return r.map((v, i) => v + residual * down[i]!);
    });
  }
  const last = rms(xs[n - 1]!, w("model.norm.weight"));
  const logits = matvec(w(c.tied ? "model.embed_tokens.weight" : "lm_head.weight"), last, c.vocab);
  return c.granite === undefined ? logits : logits.map((v) => v / c.granite!.logits);
}

/**
 * A session over the converted archive at `path` on the plain graph runtime (unfused, the
 * caches fed back whole); `prefill` runs any number of tokens after the cached ones.
 */
export async function plainSession(path: string): Promise<Session> {
  return new Session(await loadModel(path), { fuse: false, appendInPlace: false });
}

/** Largest absolute difference between two vectors of the same length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`Lengths ${a.length} and ${b.length} differ`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
