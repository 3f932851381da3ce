use super::{exp_f32x4, hsum_f32, loadf, storef, ExpConsts};
use crate::generic::activation::{exp_f32, weigh_logit};
use core::arch::wasm32::*;

/// x (m, d), w (d,) or null -> y (m, d); y may be x.
pub unsafe fn rms_norm_f32(
    x: *const f32,
    w: *const f32,
    y: *mut f32,
    m: usize,
    d: usize,
    eps: f32,
) {
    let dv = d - d % 4;
    for t in 0..m {
        let xr = x.add(t * d);
        let yr = y.add(t * d);
        let mut s = f32x4_splat(0.0);
        let mut j = 0;
        while j < dv {
            let v = loadf(xr.add(j));
            s = f32x4_add(s, f32x4_mul(v, v));
            j += 4;
        }
        let mut ss = hsum_f32(s);
        for j in dv..d {
            ss += *xr.add(j) * *xr.add(j);
        }
        let r = f32x4_splat(1.0);
        let r = f32x4_div(r, f32x4_sqrt(f32x4_splat(ss / d as f32 + eps)));
        let rs = f32x4_extract_lane::<0>(r);
        let mut j = 0;
        while j < dv {
            let v = f32x4_mul(loadf(xr.add(j)), r);
            storef(
                yr.add(j),
                if w.is_null() {
                    v
                } else {
                    f32x4_mul(v, loadf(w.add(j)))
                },
            );
            j += 4;
        }
        for j in dv..d {
            let v = *xr.add(j) * rs;
            *yr.add(j) = if w.is_null() { v } else { v * *w.add(j) };
        }
    }
}

/// `generic::activation::weigh_logits` over x (n) -> w (n), the same bits and the same sum.
pub unsafe fn weigh_logits(x: *const f32, w: *mut f32, n: usize, max: f32, scale: f32) -> f64 {
    let c = ExpConsts::new();
    let (mv, sv) = (f32x4_splat(max), f32x4_splat(scale));
    let (mut lo, mut hi) = (f64x2_splat(0.0), f64x2_splat(0.0));
    let body = n - n % 4;
    let mut j = 0;
    while j < body {
        let d = f32x4_mul(f32x4_sub(loadf(x.add(j)), mv), sv);
        let e = v128_and(exp_f32x4(d, &c), f32x4_eq(d, d));
        storef(w.add(j), e);
        lo = f64x2_add(lo, f64x2_promote_low_f32x4(e));
        hi = f64x2_add(hi, f64x2_promote_low_f32x4(i32x4_shuffle::<2, 3, 2, 3>(e, e)));
        j += 4;
    }
    let lanes = |v: v128| f64x2_extract_lane::<0>(v) + f64x2_extract_lane::<1>(v);
    let mut total = lanes(lo) + lanes(hi);
    while j < n {
        let e = weigh_logit(*x.add(j), max, scale);
        *w.add(j) = e;
        total += e as f64;
        j += 1;
    }
    total
}

/// x (m, n) -> y (m, n); y may be x.
pub unsafe fn softmax_f32(x: *const f32, y: *mut f32, m: usize, n: usize) {
    let c = ExpConsts::new();
    for t in 0..m {
        softmax_row(x.add(t * n), y.add(t * n), n, &c);
    }
}

#[inline(always)]
pub unsafe fn softmax_row(x: *const f32, y: *mut f32, n: usize, c: &ExpConsts) {
    let nv = n - n % 4;
    let mut mx = f32x4_splat(f32::NEG_INFINITY);
    let mut j = 0;
    while j < nv {
        mx = f32x4_pmax(mx, loadf(x.add(j)));
        j += 4;
    }
    mx = f32x4_pmax(mx, i32x4_shuffle::<2, 3, 0, 1>(mx, mx));
    mx = f32x4_pmax(mx, i32x4_shuffle::<1, 0, 3, 2>(mx, mx));
    let mut m = f32x4_extract_lane::<0>(mx);
    for j in nv..n {
        let v = *x.add(j);
        m = if v > m { v } else { m };
    }
    let mv = f32x4_splat(m);
    let mut s = f32x4_splat(0.0);
    let mut j = 0;
    while j < nv {
        let e = exp_f32x4(f32x4_sub(loadf(x.add(j)), mv), c);
        storef(y.add(j), e);
        s = f32x4_add(s, e);
        j += 4;
    }
    let mut sum = hsum_f32(s);
    for j in nv..n {
        let e = exp_f32(*x.add(j) - m);
        *y.add(j) = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    let iv = f32x4_splat(inv);
    let mut j = 0;
    while j < nv {
        storef(y.add(j), f32x4_mul(loadf(y.add(j)), iv));
        j += 4;
    }
    for j in nv..n {
        *y.add(j) *= inv;
    }
}

/// y (len) = silu(a) * b; y may be a or b.
pub unsafe fn silu_gate_f32(a: *const f32, b: *const f32, y: *mut f32, len: usize) {
    let lv = len - len % 4;
    let c = ExpConsts::new();
    let mut j = 0;
    while j < lv {
        let av = loadf(a.add(j));
        let e = exp_f32x4(f32x4_neg(av), &c);
        storef(
            y.add(j),
            f32x4_mul(f32x4_div(av, f32x4_add(c.one(), e)), loadf(b.add(j))),
        );
        j += 4;
    }
    for j in lv..len {
        let av = *a.add(j);
        *y.add(j) = (av / (1.0 + exp_f32(-av))) * *b.add(j);
    }
}

/// a, b (len) -> y = a + b; y may be a or b.
pub unsafe fn add_f32(a: *const f32, b: *const f32, y: *mut f32, len: usize) {
    let lv = len - len % 4;
    let mut j = 0;
    while j < lv {
        storef(y.add(j), f32x4_add(loadf(a.add(j)), loadf(b.add(j))));
        j += 4;
    }
    for j in lv..len {
        *y.add(j) = *a.add(j) + *b.add(j);
    }
}

/// x (m, n_heads, head_dim), cos/sin (m, head_dim) -> y like x; y may be x.
pub unsafe fn rope_rotate_half_f32(
    x: *const f32,
    cos: *const f32,
    sin: *const f32,
    y: *mut f32,
    m: usize,
    n_heads: usize,
    head_dim: usize,
) {
    let half = head_dim / 2;
    let hv = half - half % 4;
    for t in 0..m {
        let c = cos.add(t * head_dim);
        let s = sin.add(t * head_dim);
        for h in 0..n_heads {
            let base = (t * n_heads + h) * head_dim;
            let (xa, xb) = (x.add(base), x.add(base + half));
            let (ya, yb) = (y.add(base), y.add(base + half));
            let mut i = 0;
            while i < hv {
                let x1 = loadf(xa.add(i));
                let x2 = loadf(xb.add(i));
                let o1 = f32x4_add(
                    f32x4_mul(x1, loadf(c.add(i))),
                    f32x4_mul(f32x4_neg(x2), loadf(s.add(i))),
                );
                let o2 = f32x4_add(
                    f32x4_mul(x2, loadf(c.add(i + half))),
                    f32x4_mul(x1, loadf(s.add(i + half))),
                );
                storef(ya.add(i), o1);
                storef(yb.add(i), o2);
                i += 4;
            }
            for i in hv..half {
                let x1 = *xa.add(i);
                let x2 = *xb.add(i);
                *ya.add(i) = x1 * *c.add(i) + (-x2) * *s.add(i);
                *yb.add(i) = x2 * *c.add(i + half) + x1 * *s.add(i + half);
            }
        }
    }
}

/// Sum of bytes / 4 u32 words from p; bytes a multiple of 64.
pub unsafe fn read_sum_u32(p: *const u8, bytes: usize) -> u32 {
    let mut a = [i32x4_splat(0); 4];
    let mut o = 0;
    while o + 64 <= bytes {
        for (i, ai) in a.iter_mut().enumerate() {
            *ai = i32x4_add(*ai, v128_load(p.add(o + 16 * i) as *const v128));
        }
        o += 64;
    }
    let s = i32x4_add(i32x4_add(a[0], a[1]), i32x4_add(a[2], a[3]));
    let s = i32x4_add(s, i32x4_shuffle::<2, 3, 0, 1>(s, s));
    (i32x4_extract_lane::<0>(s) as u32).wrapping_add(i32x4_extract_lane::<1>(s) as u32)
}

/// The dot-product roofline: `rounds` passes over `bytes` bytes at p (kept in L1 by the
/// caller), each 32 bytes as two activation vectors meeting six weight vectors held in
/// registers, 12 dot products summed in i16 (192 products of i8 by 7-bit values with
/// relaxed SIMD, 96 of i16 pairs without). No Q4_0 kernel does less per product: it must
/// also unpack codes and scale. Six weights leave V8's 16 vector registers unspilled (eight
/// spilled the sums: 78 against 94 GMAC/s here). Returns the sums' first u16 lane; `bytes` is
/// a multiple of 32.
pub unsafe fn dot_peak_i8(p: *const u8, bytes: usize, rounds: usize) -> u32 {
    let w: [v128; 6] = core::hint::black_box(core::array::from_fn(|i| u8x16_splat(i as u8 + 1)));
    let mut acc = [i16x8_splat(0); 6];
    for _ in 0..rounds {
        let mut o = 0;
        while o + 32 <= bytes {
            let (a0, a1) = (
                v128_load(p.add(o) as *const v128),
                v128_load(p.add(o + 16) as *const v128),
            );
            for (ac, wj) in acc.iter_mut().zip(w) {
                *ac = i16x8_add(*ac, i16x8_add(dot(a0, wj), dot(a1, wj)));
            }
            o += 32;
        }
    }
    let s = acc.iter().fold(i16x8_splat(0), |s, a| i16x8_add(s, *a));
    u16x8_extract_lane::<0>(s) as u32
}

#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn dot(a: v128, w: v128) -> v128 {
    i16x8_relaxed_dot_i8x16_i7x16(a, w)
}

#[cfg(not(target_feature = "relaxed-simd"))]
#[inline(always)]
fn dot(a: v128, w: v128) -> v128 {
    i32x4_dot_i16x8(a, w)
}
