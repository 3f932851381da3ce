import { type Tensor, tensor } from "../tensor/tensor.ts";
import { type Dim, dimEquals, shapeToString } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { broadcastStrides, finish } from "./common.ts";
import { asF32 } from "./matmul.ts";

function check(q: readonly Dim[], k: readonly Dim[], v: readonly Dim[]): Dim[] {
  const rank = q.length;
  const ok = (rank === 3 || rank === 4) && k.length === rank && v.length === rank &&
    dimEquals(q[rank - 1]!, k[rank - 1]!) && dimEquals(k[rank - 2]!, v[rank - 2]!);
  if (!ok) {
    throw new RangeError(
      `tract_transformers_sdpa: q ${shapeToString(q)}, k ${shapeToString(k)}, v ${
        shapeToString(v)
      } do not fit`,
    );
  }
  if (rank === 4) {
    const [h, hk] = [q[1]!, k[1]!];
    if (typeof h === "number" && typeof hk === "number" && h % hk !== 0) {
      throw new RangeError(`tract_transformers_sdpa: ${h} query heads for ${hk} key heads`);
    }
  }
  return [...q.slice(0, rank - 1), v[rank - 1]!];
}

/**
 * `tract_transformers_sdpa(q, k, v, mask, scale, datum_type, acc_datum_type, is_causal)`:
 * softmax(q·kᵀ·scale + mask)·v over `[B, (H,) L, D]`, grouped-query heads, scale
 * 1/√D by default, a causal mask aligned bottom-right, bool masks as keep/drop.
 */
export const tractTransformersSdpa: Op = {
  signature:
    "fragment tract_transformers_sdpa(q: tensor<scalar>, k: tensor<scalar>, v: tensor<scalar>, mask: tensor<scalar> = [], scale: scalar = [], datum_type: string = 'f32', acc_datum_type: string = 'f32', is_causal: logical = false) -> (output: tensor<scalar>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const q = args.tensor("q");
    const shape = check(q.shape, args.tensor("k").shape, args.tensor("v").shape);
    return [{ dtype: q.dtype, shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const q4 = args.tensor("q");
    const rank = q4.shape.length;
    const lift = (
      t: Tensor,
    ): readonly number[] => (rank === 3 ? [t.shape[0]!, 1, ...t.shape.slice(1)] : t.shape);
    const [B, H, L, D] = lift(q4) as [number, number, number, number];
    const kt = args.tensor("k");
    const vt = args.tensor("v");
    const [, Hk, Lk] = lift(kt) as [number, number, number, number];
    const Dv = vt.shape[rank - 1]!;
    const scale = args.has("scale") ? args.float("scale") : 1 / Math.sqrt(D);
    const causal = args.bool("is_causal");
    const maskT = args.optionalTensor("mask");
    const q = asF32(q4);
    const k = asF32(kt);
    const v = asF32(vt);
    let mask: Float32Array | Uint8Array | null = null;
    let ms: number[] = [0, 0, 0, 0];
    if (maskT) {
      const mshape = [...new Array<number>(4 - maskT.shape.length).fill(1), ...maskT.shape];
      ms = broadcastStrides(mshape, [B, H, L, Lk]);
      mask = maskT.dtype === "bool" ? (maskT.data as Uint8Array) : asF32(maskT);
    }
    const boolMask = maskT?.dtype === "bool";
    const group = H / Hk;
    const out = new Float32Array(B * H * L * Dv);
    const scores = new Float64Array(Lk);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / group);
        const kBase = ((b * Hk + kh) * Lk) * D;
        const vBase = ((b * Hk + kh) * Lk) * Dv;
        for (let i = 0; i < L; i++) {
          const qo = ((b * H + h) * L + i) * D;
          let max = -Infinity;
          for (let j = 0; j < Lk; j++) {
            let s: number;
            if (causal && j > i + (Lk - L)) s = -Infinity;
            else {
              let dot = 0;
              const ko = kBase + j * D;
              for (let d = 0; d < D; d++) dot += q[qo + d]! * k[ko + d]!;
              s = dot * scale;
              if (mask) {
                const m = mask[b * ms[0]! + h * ms[1]! + i * ms[2]! + j * ms[3]!]!;
                if (boolMask) s = m ? s : -Infinity;
                else s += m;
              }
            }
            scores[j] = s;
            if (s > max) max = s;
          }
          let sum = 0;
          for (let j = 0; j < Lk; j++) {
            const e = max === -Infinity ? 0 : Math.exp(scores[j]! - max);
            scores[j] = e;
            sum += e;
          }
          const oo = ((b * H + h) * L + i) * Dv;
          for (let j = 0; j < Lk; j++) {
            const p = sum > 0 ? scores[j]! / sum : 0;
            if (p === 0) continue;
            const vo = vBase + j * Dv;
            for (let d = 0; d < Dv; d++) out[oo + d] = out[oo + d]! + p * v[vo + d]!;
          }
        }
      }
    }
    return [finish(tensor(q4.dtype, q4.shape.slice(0, rank - 1).concat([Dv]), out))];
  },
};
