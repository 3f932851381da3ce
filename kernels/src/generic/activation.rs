//! Element-wise kernels: the residual add and the exp-based ones. `exp_f32` is the exact scalar
//! image of the SIMD `exp`.

use super::{reduce4, round_even};

pub const EXP_HI: f32 = 88.376_26;
pub const EXP_LO: f32 = -87.336_55;
pub const LOG2E: f32 = 1.442_695;
pub const LN2_HI: f32 = 0.693_359_4;
pub const LN2_LO: f32 = -2.121_944_4e-4;
pub const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    5.000_000_1e-1,
];

/// e^x to about 2 ulp; 0 below `EXP_LO`, saturated at e^`EXP_HI`.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let under = x < EXP_LO;
    let x = if x > EXP_HI { EXP_HI } else { x };
    let x = if x < EXP_LO { EXP_LO } else { x };
    let n = round_even(x * LOG2E);
    let r = x - n * LN2_HI;
    let r = r - n * LN2_LO;
    let mut p = EXP_POLY[0];
    for &c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    let e = (p * (r * r) + r) + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if under {
        0.0
    } else {
        e * scale
    }
}

/// y = a + b item by item.
pub fn add_f32(a: &[f32], b: &[f32], y: &mut [f32], len: usize) {
    for j in 0..len {
        y[j] = a[j] + b[j];
    }
}

/// y (len) = silu(a) * b = a / (1 + e^-a) * b.
pub fn silu_gate_f32(a: &[f32], b: &[f32], y: &mut [f32], len: usize) {
    for j in 0..len {
        y[j] = (a[j] / (1.0 + exp_f32(-a[j]))) * b[j];
    }
}

/// Softmax of one row, in place.
pub fn softmax_in_place(row: &mut [f32]) {
    let n = row.len();
    let nv = n - n % 4;
    let mut mx = f32::NEG_INFINITY;
    for &v in row.iter() {
        mx = if v > mx { v } else { mx };
    }
    let mut s = [0.0f32; 4];
    for j in 0..n {
        let e = exp_f32(row[j] - mx);
        row[j] = e;
        if j < nv {
            s[j % 4] += e;
        }
    }
    let mut sum = reduce4(s);
    for &v in &row[nv..n] {
        sum += v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// One item of `weigh_logits`: e^((x - max) * scale), 0 where that is NaN.
#[inline(always)]
pub fn weigh_logit(x: f32, max: f32, scale: f32) -> f32 {
    let d = (x - max) * scale;
    if d.is_nan() {
        0.0
    } else {
        exp_f32(d)
    }
}

/// A sampler's weights: w (n) = e^((x - max) * scale) item by item, 0 where that is NaN;
/// returns the sum of w in f64, item i into partial sum i % 4 up to n - n % 4 (the SIMD lanes),
/// the partials added as (s0 + s1) + (s2 + s3), then the rest in order.
pub fn weigh_logits(x: &[f32], w: &mut [f32], max: f32, scale: f32) -> f64 {
    let n = x.len();
    let body = n - n % 4;
    let mut s = [0.0f64; 4];
    for j in 0..n {
        w[j] = weigh_logit(x[j], max, scale);
        if j < body {
            s[j % 4] += w[j] as f64;
        }
    }
    let mut total = (s[0] + s[1]) + (s[2] + s[3]);
    for &v in &w[body..n] {
        total += v as f64;
    }
    total
}

/// Rotate-half RoPE: x (m, n_heads, head_dim), cos/sin (m, head_dim) -> y, like
/// `x * cos + rotate_half(x) * sin` with rotate_half(x) = cat(-x2, x1). y may be x.
#[allow(clippy::too_many_arguments)]
pub fn rope_rotate_half_f32(
    x: &[f32],
    cos: &[f32],
    sin: &[f32],
    y: &mut [f32],
    m: usize,
    n_heads: usize,
    head_dim: usize,
) {
    let half = head_dim / 2;
    for t in 0..m {
        let c = &cos[t * head_dim..t * head_dim + head_dim];
        let s = &sin[t * head_dim..t * head_dim + head_dim];
        for h in 0..n_heads {
            let base = (t * n_heads + h) * head_dim;
            for i in 0..half {
                let x1 = x[base + i];
                let x2 = x[base + i + half];
                y[base + i] = x1 * c[i] + (-x2) * s[i];
                y[base + i + half] = x2 * c[i + half] + x1 * s[i + half];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn exp_f32_is_within_two_ulp_of_libm() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let e = exp_f32(x);
            let r = x.exp();
            assert!(((e - r) / r).abs() < 2.5e-7, "{x}: {e} vs {r}");
            x += 0.173;
        }
        assert_eq!(exp_f32(-1000.0), 0.0);
        assert!(exp_f32(1000.0).is_finite());
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn weigh_logits_weighs_every_item_and_sums_them() {
        let x = [2.0f32, -1.0, 0.5, f32::NEG_INFINITY, 2.0, f32::NAN, -200.0];
        let mut w = [9.0f32; 7];
        let total = weigh_logits(&x, &mut w, 2.0, 0.5);
        assert_eq!(w[0], 1.0);
        assert!((w[1] - (-1.5f32).exp()).abs() < 1e-6);
        assert!((w[2] - (-0.75f32).exp()).abs() < 1e-6);
        assert_eq!((w[3], w[4], w[5], w[6]), (0.0, 1.0, 0.0, 0.0));
        let sum: f64 = w.iter().map(|&v| v as f64).sum();
        assert!((total - sum).abs() < 1e-12);
    }

    #[test]
    fn softmax_in_place_rows_sum_to_one() {
        let mut y = [1.0f32, 2.0, 3.0, 4.0, 5.0, -1.0, 0.0, 1.0, 2.0, 3.0];
        for row in y.chunks_mut(5) {
            softmax_in_place(row);
        }
        let s: f32 = y[..5].iter().sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert!((y[4] - 0.636_409_6).abs() < 1e-5);
    }

    #[test]
    fn silu_gate_f32_matches_definition() {
        let a = [-2.0f32, 0.0, 0.5, 3.0];
        let b = [1.0f32, 2.0, -1.0, 0.5];
        let mut y = [0.0f32; 4];
        silu_gate_f32(&a, &b, &mut y, 4);
        for j in 0..4 {
            let e = a[j] / (1.0 + (-a[j]).exp()) * b[j];
            assert!((y[j] - e).abs() < 1e-6);
        }
    }

    #[test]
    fn rope_rotate_half_f32_rotates_pairs() {
        let x = [1.0f32, 2.0, 3.0, 4.0];
        let (c, s) = (0.6f32, 0.8f32);
        let cos = [c; 4];
        let sin = [s; 4];
        let mut y = [0.0f32; 4];
        rope_rotate_half_f32(&x, &cos, &sin, &mut y, 1, 1, 4);
        assert!((y[0] - (1.0 * c - 3.0 * s)).abs() < 1e-6);
        assert!((y[2] - (3.0 * c + 1.0 * s)).abs() < 1e-6);
    }
}
