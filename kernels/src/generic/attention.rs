//! Attention of query rows over a KV cache laid out (n_kv_heads, capacity, head_dim).

use super::activation::softmax_in_place;
use super::matmul::dot_lanes;

/// Shapes of one attention call; query row t sits at cache position q_pos0 + t and
/// sees cache positions 0..=q_pos0 + t (causal), at most kv_len of them.
#[derive(Clone, Copy)]
pub struct AttentionShape {
    pub m: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub capacity: usize,
    pub kv_len: usize,
    pub q_pos0: usize,
    pub scale: f32,
}

impl AttentionShape {
    #[inline(always)]
    pub fn visible(&self, t: usize) -> usize {
        visible(self.q_pos0, t, self.kv_len)
    }
}

/// Positions query row t (at position q_pos0 + t) sees: 0..=q_pos0 + t, at most kv_len.
#[inline(always)]
pub fn visible(q_pos0: usize, t: usize, kv_len: usize) -> usize {
    let causal = q_pos0 + t + 1;
    if causal < kv_len {
        causal
    } else {
        kv_len
    }
}

/// q (m, n_heads, head_dim), caches (n_kv_heads, capacity, head_dim) -> out like q,
/// heads `h0..h1` only; `scores` holds kv_len floats.
#[allow(clippy::too_many_arguments)]
pub fn attention_f32(
    q: &[f32],
    k_cache: &[f32],
    v_cache: &[f32],
    out: &mut [f32],
    scores: &mut [f32],
    s: &AttentionShape,
    h0: usize,
    h1: usize,
) {
    if s.n_kv_heads == 0 || s.n_heads % s.n_kv_heads != 0 {
        return;
    }
    let hd = s.head_dim;
    let group = s.n_heads / s.n_kv_heads;
    for t in 0..s.m {
        let len = s.visible(t);
        for h in h0..h1.min(s.n_heads) {
            let row = (h / group) * s.capacity * hd;
            let qo = (t * s.n_heads + h) * hd;
            attend_row(
                &q[qo..qo + hd],
                len,
                s.scale,
                |j, i| k_cache[row + j * hd + i],
                |j, i| v_cache[row + j * hd + i],
                scores,
                &mut out[qo..qo + hd],
            );
        }
    }
}

/// One query row of one head over `len` positions whose key and value items `key(j, i)` and
/// `value(j, i)` give: scores[j] = q . K_j * scale (as `matmul::dot_f32` adds it), softmax, then
/// out[i] = sum_j p_j * V_j[i] in increasing j. The reference every attention kernel follows.
pub fn attend_row(
    q: &[f32],
    len: usize,
    scale: f32,
    key: impl Fn(usize, usize) -> f32,
    value: impl Fn(usize, usize) -> f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let hd = q.len();
    for (j, sc) in scores[..len].iter_mut().enumerate() {
        *sc = dot_lanes(hd, 4, |i| key(j, i), q) * scale;
    }
    let sc = &mut scores[..len];
    softmax_in_place(sc);
    for (i, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for (j, &p) in sc.iter().enumerate() {
            acc += p * value(j, i);
        }
        *o = acc;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn each_query_row_equals_its_single_row_result() {
        let s = AttentionShape {
            m: 5,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 9,
            capacity: 12,
            kv_len: 11,
            q_pos0: 6,
            scale: 0.3,
        };
        let f = |i: usize| ((i * 29 % 31) as f32 - 15.0) * 0.07;
        let ql = s.n_heads * s.head_dim;
        let q: std::vec::Vec<f32> = (0..s.m * ql).map(f).collect();
        let cl = s.n_kv_heads * s.capacity * s.head_dim;
        let kc: std::vec::Vec<f32> = (0..cl).map(|i| f(i + 5)).collect();
        let vc: std::vec::Vec<f32> = (0..cl).map(|i| f(i + 9)).collect();
        let mut out = vec![0.0f32; q.len()];
        let mut scores = vec![0.0f32; s.kv_len];
        attention_f32(&q, &kc, &vc, &mut out, &mut scores, &s, 0, 1);
        attention_f32(&q, &kc, &vc, &mut out, &mut scores, &s, 1, s.n_heads);
        for t in 0..s.m {
            let one_shape = AttentionShape {
                m: 1,
                q_pos0: s.q_pos0 + t,
                kv_len: s.visible(t),
                ..s
            };
            let mut one = vec![0.0f32; ql];
            let qt = &q[t * ql..(t + 1) * ql];
            attention_f32(
                qt,
                &kc,
                &vc,
                &mut one,
                &mut scores,
                &one_shape,
                0,
                s.n_heads,
            );
            for j in 0..ql {
                assert_eq!(
                    out[t * ql + j].to_bits(),
                    one[j].to_bits(),
                    "row {t} value {j}"
                );
            }
        }
    }

    #[test]
    fn attention_f32_matches_f64_reference_with_gqa_and_causal_mask() {
        let s = AttentionShape {
            m: 2,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 6,
            capacity: 8,
            kv_len: 5,
            q_pos0: 3,
            scale: 0.4,
        };
        let f = |i: usize| ((i * 37 % 17) as f32 - 8.0) * 0.1;
        let q: std::vec::Vec<f32> = (0..s.m * s.n_heads * s.head_dim).map(f).collect();
        let kc: std::vec::Vec<f32> = (0..s.n_kv_heads * s.capacity * s.head_dim)
            .map(|i| f(i + 3))
            .collect();
        let vc: std::vec::Vec<f32> = (0..s.n_kv_heads * s.capacity * s.head_dim)
            .map(|i| f(i + 11))
            .collect();
        let mut out = vec![0.0f32; q.len()];
        let mut scores = vec![0.0f32; s.kv_len];
        attention_f32(&q, &kc, &vc, &mut out, &mut scores, &s, 0, s.n_heads);
        for t in 0..s.m {
            let len = [4usize, 5][t];
            for h in 0..s.n_heads {
                let kvh = h / 2;
                let qo = (t * s.n_heads + h) * s.head_dim;
                let mut sc = vec![0.0f64; len];
                for j in 0..len {
                    for i in 0..s.head_dim {
                        sc[j] += q[qo + i] as f64 * kc[(kvh * 8 + j) * 6 + i] as f64;
                    }
                    sc[j] *= 0.4;
                }
                let mx = sc.iter().cloned().fold(f64::MIN, f64::max);
                let sum: f64 = sc.iter().map(|v| (v - mx).exp()).sum();
                for i in 0..s.head_dim {
                    let e: f64 = (0..len)
                        .map(|j| (sc[j] - mx).exp() / sum * vc[(kvh * 8 + j) * 6 + i] as f64)
                        .sum();
                    assert!((out[qo + i] as f64 - e).abs() < 1e-5, "t {t} h {h} i {i}");
                }
            }
        }
    }
}
