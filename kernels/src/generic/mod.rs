//! Scalar reference kernels: the twins every `simd128` kernel is checked against.

pub mod activation;
pub mod attention;
pub mod f16;
pub mod matmul;
pub mod norm;
pub mod paged_kv;
pub mod q4_0;

/// Round half to even, exact for |v| < 2^22 (matches `f32x4.nearest`).
#[inline(always)]
pub fn round_even(v: f32) -> f32 {
    (v + ROUND_MAGIC) - ROUND_MAGIC
}

/// 1.5 * 2^23: a float of magnitude below 2^22 added to it rounds to an integer (half to even).
pub const ROUND_MAGIC: f32 = 12582912.0;

/// Sum of four lane partials in the order the SIMD 4-to-1 reduction uses.
#[inline(always)]
pub fn reduce4(s: [f32; 4]) -> f32 {
    (s[0] + s[2]) + (s[1] + s[3])
}

#[cfg(target_arch = "wasm32")]
#[inline(always)]
pub fn sqrt(x: f32) -> f32 {
    use core::arch::wasm32::*;
    f32x4_extract_lane::<0>(f32x4_sqrt(f32x4_splat(x)))
}

#[cfg(all(not(target_arch = "wasm32"), test))]
#[inline(always)]
pub fn sqrt(x: f32) -> f32 {
    x.sqrt()
}
