//! simd128 (and relaxed-SIMD) kernels, same names as `generic/`, raw pointers in.

pub mod attention;
pub mod elementwise;
pub mod matmul;
pub mod paged_kv;
pub mod q4_0;

use crate::generic::activation::{EXP_HI, EXP_LO, EXP_POLY, LN2_HI, LN2_LO, LOG2E};
use crate::generic::f16::F16_EXP_REBIAS;
use crate::generic::ROUND_MAGIC;
use core::arch::wasm32::*;

/// Lane i of the result is the sum of vector i, added with `add` as `generic::reduce4` does.
#[inline(always)]
fn reduce4(v0: v128, v1: v128, v2: v128, v3: v128, add: impl Fn(v128, v128) -> v128) -> v128 {
    let t0 = add(
        i32x4_shuffle::<0, 4, 1, 5>(v0, v1),
        i32x4_shuffle::<2, 6, 3, 7>(v0, v1),
    );
    let t1 = add(
        i32x4_shuffle::<0, 4, 1, 5>(v2, v3),
        i32x4_shuffle::<2, 6, 3, 7>(v2, v3),
    );
    add(
        i32x4_shuffle::<0, 1, 4, 5>(t0, t1),
        i32x4_shuffle::<2, 3, 6, 7>(t0, t1),
    )
}

/// `reduce4` of f32 lanes.
#[inline(always)]
pub fn reduce4_f32(v0: v128, v1: v128, v2: v128, v3: v128) -> v128 {
    reduce4(v0, v1, v2, v3, |a, b| f32x4_add(a, b))
}

/// `reduce4` of i32 lanes.
#[inline(always)]
pub fn reduce4_i32(v0: v128, v1: v128, v2: v128, v3: v128) -> v128 {
    reduce4(v0, v1, v2, v3, |a, b| i32x4_add(a, b))
}

/// (s0 + s2) + (s1 + s3)
#[inline(always)]
pub fn hsum_f32(v: v128) -> f32 {
    let t = f32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    f32x4_extract_lane::<0>(t) + f32x4_extract_lane::<1>(t)
}

/// Constants of `f16x4_to_f32`, built once per call and hidden from LLVM, which would
/// otherwise rematerialize them with `v128.const` inside loops (V8 does not hoist those).
#[derive(Clone, Copy)]
pub struct F16Consts {
    sign: v128,
    mag: v128,
    rebias: v128,
    exp: v128,
    inf: v128,
}

impl F16Consts {
    #[inline(always)]
    pub fn new() -> Self {
        core::hint::black_box(F16Consts {
            sign: u32x4_splat(0x8000),
            mag: u32x4_splat(0x7fff),
            rebias: f32x4_splat(F16_EXP_REBIAS),
            exp: u32x4_splat(0x7c00),
            inf: u32x4_splat(0x7f80_0000),
        })
    }
}

/// Four f16 bit patterns in u32 lanes to f32, the bit steps of `generic::f16::f16_to_f32`.
#[inline(always)]
pub fn f16x4_to_f32(h: v128, c: &F16Consts) -> v128 {
    let sign = i32x4_shl(v128_and(h, c.sign), 16);
    let mag = i32x4_shl(v128_and(h, c.mag), 13);
    let f = f32x4_mul(mag, c.rebias);
    let special = i32x4_eq(v128_and(h, c.exp), c.exp);
    v128_or(v128_bitselect(v128_or(mag, c.inf), f, special), sign)
}

/// What `f16_top_scaled` keeps of a shifted lane: the sign and the exponent and mantissa bits.
pub const F16_TOP_KEEP: u32 = 0x8fff_ffff;

/// f16 halves in the top 16 bits of u32 lanes (the low 16 zero) as f32, divided by
/// `F16_EXP_REBIAS` (`generic::f16::f16_to_f32_finite` for finite halves): an arithmetic shift
/// puts exponent and mantissa in place, and `keep` (`F16_TOP_KEEP` in every lane) drops the
/// sign's copies.
#[inline(always)]
pub fn f16_top_scaled(top: v128, keep: v128) -> v128 {
    v128_and(i32x4_shr(top, 3), keep)
}

/// Constants of `exp_f32x4` (see `F16Consts`).
#[derive(Clone, Copy)]
pub struct ExpConsts {
    lo: v128,
    hi: v128,
    log2e: v128,
    ln2_hi: v128,
    ln2_lo: v128,
    poly: [v128; 6],
    one: v128,
    /// 1.5 * 2^23: adding it rounds to an integer, kept in the low bits (`round_even`).
    magic: v128,
    /// The bits of `magic` less the exponent bias: bits(n + magic) - this is n + 127.
    magic_bias: v128,
}

impl ExpConsts {
    #[inline(always)]
    pub fn new() -> Self {
        core::hint::black_box(ExpConsts {
            lo: f32x4_splat(EXP_LO),
            hi: f32x4_splat(EXP_HI),
            log2e: f32x4_splat(LOG2E),
            ln2_hi: f32x4_splat(LN2_HI),
            ln2_lo: f32x4_splat(LN2_LO),
            poly: EXP_POLY.map(|v| f32x4_splat(v)),
            one: f32x4_splat(1.0),
            magic: f32x4_splat(ROUND_MAGIC),
            magic_bias: i32x4_splat(ROUND_MAGIC.to_bits() as i32 - 127),
        })
    }

    #[inline(always)]
    pub fn one(&self) -> v128 {
        self.one
    }
}

/// `generic::activation::exp_f32` on four lanes.
#[inline(always)]
pub fn exp_f32x4(x: v128, c: &ExpConsts) -> v128 {
    let under = f32x4_lt(x, c.lo);
    let x = f32x4_pmin(x, c.hi);
    let x = f32x4_pmax(x, c.lo);
    // n = round_even(x log2 e); its integer and 2^n from the bits of the sum, not by a
    // conversion (V8 saturates `trunc_sat` in eight instructions).
    let t = f32x4_add(f32x4_mul(x, c.log2e), c.magic);
    let n = f32x4_sub(t, c.magic);
    let r = f32x4_sub(x, f32x4_mul(n, c.ln2_hi));
    let r = f32x4_sub(r, f32x4_mul(n, c.ln2_lo));
    let mut p = c.poly[0];
    p = f32x4_add(f32x4_mul(p, r), c.poly[1]);
    p = f32x4_add(f32x4_mul(p, r), c.poly[2]);
    p = f32x4_add(f32x4_mul(p, r), c.poly[3]);
    p = f32x4_add(f32x4_mul(p, r), c.poly[4]);
    p = f32x4_add(f32x4_mul(p, r), c.poly[5]);
    let e = f32x4_add(f32x4_add(f32x4_mul(p, f32x4_mul(r, r)), r), c.one);
    let scale = i32x4_shl(i32x4_sub(t, c.magic_bias), 23);
    v128_andnot(f32x4_mul(e, scale), under)
}

/// a * b + c, fused where relaxed SIMD allows it.
#[inline(always)]
pub fn madd(a: v128, b: v128, c: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    return f32x4_relaxed_madd(a, b, c);
    #[cfg(not(target_feature = "relaxed-simd"))]
    f32x4_add(f32x4_mul(a, b), c)
}

#[inline(always)]
pub unsafe fn load(p: *const u8) -> v128 {
    v128_load(p as *const v128)
}

#[inline(always)]
pub unsafe fn loadf(p: *const f32) -> v128 {
    v128_load(p as *const v128)
}

#[inline(always)]
pub unsafe fn storef(p: *mut f32, v: v128) {
    v128_store(p as *mut v128, v)
}

/// Writes the first `count` (1..=4) lanes of v to p.
#[inline(always)]
pub unsafe fn store_lanes(p: *mut f32, v: v128, count: usize) {
    if count >= 4 {
        storef(p, v);
        return;
    }
    let lanes = [
        f32x4_extract_lane::<0>(v),
        f32x4_extract_lane::<1>(v),
        f32x4_extract_lane::<2>(v),
    ];
    for (i, &l) in lanes.iter().enumerate().take(count) {
        *p.add(i) = l;
    }
}

/// `f(0)`, `f(1)`, .. `f(N - 1)` (N <= 8), written out. LLVM leaves a loop over a large body
/// rolled, and an array that the loop indexes then lives in linear memory, where V8 checks
/// the bounds of every load and store (Deno runs WebAssembly without a trap handler); with
/// each index a constant the array's items are locals.
#[inline(always)]
pub fn unrolled<const N: usize>(mut f: impl FnMut(usize)) {
    const { assert!(N <= 8) };
    macro_rules! calls {
        ($($i:literal)*) => { $(if N > $i { f($i); })* };
    }
    calls!(0 1 2 3 4 5 6 7);
}
