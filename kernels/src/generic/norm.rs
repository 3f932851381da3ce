use super::{reduce4, sqrt};

/// x (m, d) -> y (m, d) = x / sqrt(mean(x^2) + eps) * w; `w` None means no weight.
pub fn rms_norm_f32(x: &[f32], w: Option<&[f32]>, y: &mut [f32], m: usize, d: usize, eps: f32) {
    let dv = d - d % 4;
    for t in 0..m {
        let row = &x[t * d..t * d + d];
        let mut s = [0.0f32; 4];
        for j in 0..dv {
            s[j % 4] += row[j] * row[j];
        }
        let mut ss = reduce4(s);
        for &v in &row[dv..d] {
            ss += v * v;
        }
        let r = 1.0 / sqrt(ss / d as f32 + eps);
        for j in 0..d {
            let v = row[j] * r;
            y[t * d + j] = match w {
                Some(w) => v * w[j],
                None => v,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn rms_norm_f32_normalizes_each_row() {
        let x = [3.0f32, 4.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let w = [2.0f32; 5];
        let mut y = [0.0f32; 10];
        rms_norm_f32(&x, Some(&w), &mut y, 2, 5, 0.0);
        let r = (25.0f32 / 5.0).sqrt();
        assert!((y[0] - 2.0 * 3.0 / r).abs() < 1e-6);
        assert!((y[5] - 2.0).abs() < 1e-6);
    }
}
