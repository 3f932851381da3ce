use super::elementwise::softmax_row;
use super::{hsum_f32, loadf, reduce4_f32, storef, ExpConsts};
use crate::generic::attention::AttentionShape;
use core::arch::wasm32::*;

/// q (m, n_heads, head_dim), caches (n_kv_heads, capacity, head_dim) -> out like q,
/// heads h0..h1; `scores` holds kv_len floats.
pub unsafe fn attention_f32(
    q: *const f32,
    k_cache: *const f32,
    v_cache: *const f32,
    out: *mut f32,
    scores: *mut f32,
    s: &AttentionShape,
    h0: usize,
    h1: usize,
) {
    if s.n_kv_heads == 0 || s.n_heads % s.n_kv_heads != 0 {
        return;
    }
    let c = ExpConsts::new();
    let hd = s.head_dim;
    let group = s.n_heads / s.n_kv_heads;
    let h1 = if h1 < s.n_heads { h1 } else { s.n_heads };
    for t in 0..s.m {
        let len = s.visible(t);
        for h in h0..h1 {
            let kvh = h / group;
            let qo = (t * s.n_heads + h) * hd;
            let kh = k_cache.add(kvh * s.capacity * hd);
            let vh = v_cache.add(kvh * s.capacity * hd);
            scores_row(q.add(qo), kh, scores, len, hd, s.scale);
            softmax_row(scores, scores, len, &c);
            weighted_sum(scores, vh, out.add(qo), len, hd);
        }
    }
}

#[inline(always)]
unsafe fn scores_row(
    q: *const f32,
    kh: *const f32,
    sc: *mut f32,
    len: usize,
    hd: usize,
    scale: f32,
) {
    let dv = hd - hd % 4;
    let mut j = 0;
    while j + 4 <= len {
        let mut a = [f32x4_splat(0.0); 4];
        let mut i = 0;
        while i < dv {
            let qv = loadf(q.add(i));
            for (r, ar) in a.iter_mut().enumerate() {
                *ar = f32x4_add(*ar, f32x4_mul(qv, loadf(kh.add((j + r) * hd + i))));
            }
            i += 4;
        }
        let mut sum = reduce4_f32(a[0], a[1], a[2], a[3]);
        for i in dv..hd {
            let kv = f32x4(
                *kh.add(j * hd + i),
                *kh.add((j + 1) * hd + i),
                *kh.add((j + 2) * hd + i),
                *kh.add((j + 3) * hd + i),
            );
            sum = f32x4_add(sum, f32x4_mul(kv, f32x4_splat(*q.add(i))));
        }
        storef(sc.add(j), f32x4_mul(sum, f32x4_splat(scale)));
        j += 4;
    }
    while j < len {
        let mut a = f32x4_splat(0.0);
        let mut i = 0;
        while i < dv {
            a = f32x4_add(a, f32x4_mul(loadf(q.add(i)), loadf(kh.add(j * hd + i))));
            i += 4;
        }
        let mut sum = hsum_f32(a);
        for i in dv..hd {
            sum += *q.add(i) * *kh.add(j * hd + i);
        }
        *sc.add(j) = sum * scale;
        j += 1;
    }
}

/// out (hd) = sum_j p_j * V_j, in increasing j for every element.
#[inline(always)]
unsafe fn weighted_sum(p: *const f32, vh: *const f32, out: *mut f32, len: usize, hd: usize) {
    let mut i = 0;
    while i + 16 <= hd {
        let mut a = [f32x4_splat(0.0); 4];
        for j in 0..len {
            let pj = f32x4_splat(*p.add(j));
            let v = vh.add(j * hd + i);
            for (c, ac) in a.iter_mut().enumerate() {
                *ac = f32x4_add(*ac, f32x4_mul(pj, loadf(v.add(4 * c))));
            }
        }
        for (c, ac) in a.iter().enumerate() {
            storef(out.add(i + 4 * c), *ac);
        }
        i += 16;
    }
    while i + 4 <= hd {
        let mut a = f32x4_splat(0.0);
        for j in 0..len {
            a = f32x4_add(
                a,
                f32x4_mul(f32x4_splat(*p.add(j)), loadf(vh.add(j * hd + i))),
            );
        }
        storef(out.add(i), a);
        i += 4;
    }
    while i < hd {
        let mut a = 0.0f32;
        for j in 0..len {
            a += *p.add(j) * *vh.add(j * hd + i);
        }
        *out.add(i) = a;
        i += 1;
    }
}
