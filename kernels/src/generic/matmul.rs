//! Dense matmuls with row-major weights (n, k), like `linear`: y = x @ W^T.
//! Lane `j % 4` partial sums over the first `k - k % span` values, then the tail,
//! in the order the SIMD kernels add them.

use super::f16::f16_to_f32;
use super::reduce4;

/// Sum over j < k of w(j) * x[j]: lane `j % 4` partial sums over the first `k - k % span`
/// values, reduced as the SIMD lanes are, then the tail in order.
#[inline(always)]
pub fn dot_lanes(k: usize, span: usize, w: impl Fn(usize) -> f32, x: &[f32]) -> f32 {
    let kv = k - k % span;
    let mut s = [0.0f32; 4];
    for j in 0..kv {
        s[j % 4] += w(j) * x[j];
    }
    let mut acc = reduce4(s);
    for j in kv..k {
        acc += w(j) * x[j];
    }
    acc
}

/// W (n, k) of items `decode` turns into f32 @ x (m, k) -> y (m, n), rows `r0..r1` of W only,
/// with the lanes of a SIMD kernel reading `span` values per step.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn matmul_rows<T: Copy>(
    w: &[T],
    decode: impl Fn(T) -> f32,
    span: usize,
    x: &[f32],
    y: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    r0: usize,
    r1: usize,
) {
    for r in r0..r1.min(n) {
        let wr = &w[r * k..r * k + k];
        for t in 0..m {
            y[t * n + r] = dot_lanes(k, span, |j| decode(wr[j]), &x[t * k..t * k + k]);
        }
    }
}

/// W (n, k) f32 @ x (m, k) -> y (m, n), rows `r0..r1` of W only.
#[allow(clippy::too_many_arguments)]
pub fn matmul_f32_f32(
    w: &[f32],
    x: &[f32],
    y: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    r0: usize,
    r1: usize,
) {
    matmul_rows(w, |v| v, 4, x, y, m, n, k, r0, r1);
}

/// W (n, k) f16 bits @ x (m, k) f32 -> y (m, n), rows `r0..r1` of W only.
#[allow(clippy::too_many_arguments)]
pub fn matmul_f16_f32(
    w: &[u16],
    x: &[f32],
    y: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    r0: usize,
    r1: usize,
) {
    matmul_rows(w, f16_to_f32, 8, x, y, m, n, k, r0, r1);
}

/// Dot product of two f32 vectors with the SIMD lane order (span 4).
pub fn dot_f32(a: &[f32], b: &[f32], k: usize) -> f32 {
    dot_lanes(k, 4, |j| a[j], b)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    const F32_ERROR_BUDGET: f64 = 1e-5;

    #[test]
    fn matmul_f32_f32_matches_f64_reference() {
        let (m, n, k) = (3, 5, 13);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.1)
            .collect();
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 5 % 9) as f32 - 4.0) * 0.3)
            .collect();
        let mut y = std::vec![0.0f32; m * n];
        matmul_f32_f32(&w, &x, &mut y, m, n, k, 0, n);
        for t in 0..m {
            for r in 0..n {
                let e: f64 = (0..k)
                    .map(|j| w[r * k + j] as f64 * x[t * k + j] as f64)
                    .sum();
                assert!((y[t * n + r] as f64 - e).abs() < F32_ERROR_BUDGET);
            }
        }
    }

    #[test]
    fn each_row_equals_its_single_row_result_for_any_m_and_split() {
        let (n, k) = (11, 37);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 13 % 23) as f32 - 11.0) * 0.07)
            .collect();
        let wh: Vec<u16> = (0..n * k)
            .map(|i| 0x3400 + (i as u16 * 37 % 0x800))
            .collect();
        for m in [2, 3, 7] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 19) as f32 - 9.0) * 0.31)
                .collect();
            let mut y = std::vec![0.0f32; m * n];
            let mut yh = std::vec![0.0f32; m * n];
            for (r0, r1) in [(0, 4), (4, 5), (5, n)] {
                matmul_f32_f32(&w, &x, &mut y, m, n, k, r0, r1);
                matmul_f16_f32(&wh, &x, &mut yh, m, n, k, r0, r1);
            }
            for t in 0..m {
                let xt = &x[t * k..(t + 1) * k];
                let mut one = std::vec![0.0f32; n];
                let mut oneh = std::vec![0.0f32; n];
                matmul_f32_f32(&w, xt, &mut one, 1, n, k, 0, n);
                matmul_f16_f32(&wh, xt, &mut oneh, 1, n, k, 0, n);
                for j in 0..n {
                    assert_eq!(
                        y[t * n + j].to_bits(),
                        one[j].to_bits(),
                        "f32 row {t} col {j}"
                    );
                    assert_eq!(
                        yh[t * n + j].to_bits(),
                        oneh[j].to_bits(),
                        "f16 row {t} col {j}"
                    );
                }
            }
        }
    }

    #[test]
    fn matmul_f16_f32_matches_f64_reference() {
        let (m, n, k) = (2, 3, 19);
        let w: Vec<u16> = (0..n * k)
            .map(|i| 0x3800 + (i as u16 % 7) * 0x100)
            .collect();
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 5 % 9) as f32 - 4.0) * 0.25)
            .collect();
        let mut y = std::vec![0.0f32; m * n];
        matmul_f16_f32(&w, &x, &mut y, m, n, k, 0, n);
        for t in 0..m {
            for r in 0..n {
                let e: f64 = (0..k)
                    .map(|j| f16_to_f32(w[r * k + j]) as f64 * x[t * k + j] as f64)
                    .sum();
                assert!((y[t * n + r] as f64 - e).abs() < F32_ERROR_BUDGET * e.abs().max(1.0));
            }
        }
    }
}
