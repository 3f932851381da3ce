/// IEEE half to single, exact for every input (the SIMD path does the same bit steps).
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let mag = (h & 0x7fff) << 13;
    let bits = if (h & 0x7c00) == 0x7c00 {
        mag | 0x7f80_0000
    } else {
        (f32::from_bits(mag) * F16_EXP_REBIAS).to_bits()
    };
    f32::from_bits(bits | sign)
}

/// Half to single for finite values (Q4_0 block scales); an inf/NaN half maps to a
/// large finite value instead. The SIMD Q4_0 kernels do the same bit steps.
#[inline(always)]
pub fn f16_to_f32_finite(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let mag = (h & 0x7fff) << 13;
    f32::from_bits((f32::from_bits(mag) * F16_EXP_REBIAS).to_bits() | sign)
}

/// Single to half for a KV cache: `f32_to_f16`, a subnormal result (magnitude below 2^-14)
/// stored as zero of its sign. Read through the 2^112 rebias, a subnormal half is a subnormal
/// single, and x86 CPUs take a microcode assist on every such operand (WebAssembly cannot set
/// their flush-to-zero modes): a random-weight 110M model's decode steps ran 1.34-1.59x slower
/// for them. What it drops is below 2^-14 in a product with the query or a probability.
#[inline(always)]
pub fn f32_to_f16_normal(x: f32) -> u16 {
    let h = f32_to_f16(x);
    if h & 0x7c00 == 0 {
        h & 0x8000
    } else {
        h
    }
}

/// 2^112: moves a half exponent bias (15) to a single one (127).
pub const F16_EXP_REBIAS: f32 = 5.192_296_858_534_828e33;

/// Single to half, rounded to nearest even like `Float16Array`: overflow gives infinity,
/// a NaN keeps its sign and the top of its payload, quieted.
#[inline(always)]
pub fn f32_to_f16(x: f32) -> u16 {
    let f = x.to_bits();
    let sign = ((f >> 16) & 0x8000) as u16;
    let exp = ((f >> 23) & 0xff) as i32;
    let mant = f & 0x7f_ffff;
    if exp == 0xff {
        let nan = if mant != 0 {
            0x200 | (mant >> 13) as u16
        } else {
            0
        };
        return sign | 0x7c00 | nan;
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        return sign | round_shift(m, shift) as u16;
    }
    // A carry out of the mantissa moves into the exponent, up to infinity: still right.
    sign | (((e as u32) << 10) + round_shift(mant, 13)) as u16
}

/// v >> shift, rounded to nearest, ties to even.
#[inline(always)]
fn round_shift(v: u32, shift: u32) -> u32 {
    let out = v >> shift;
    let rest = v & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    if rest > half || (rest == half && out & 1 == 1) {
        out + 1
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_to_f32_converts_normals_subnormals_and_specials() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn f32_to_f16_normal_keeps_normal_halves_and_flushes_subnormal_ones() {
        for x in [1.0f32, -2.5, 65504.0, 2e-4, -6.2e-5, 0.0] {
            assert_eq!(f32_to_f16_normal(x), f32_to_f16(x), "{x}");
        }
        // Rounds up to the least normal half: kept.
        assert_eq!(f32_to_f16_normal(6.1033e-5), 0x0400);
        for x in [6.09e-5f32, 3e-7, 1e-9] {
            assert_eq!(f32_to_f16_normal(x), 0x0000, "{x}");
            assert_eq!(f32_to_f16_normal(-x), 0x8000, "-{x}");
        }
        assert_eq!(f32_to_f16_normal(f32::INFINITY), 0x7c00);
        assert!(f32_to_f16_normal(f32::NAN) & 0x7c00 == 0x7c00);
    }

    #[test]
    fn f32_to_f16_rounds_to_nearest_even_and_keeps_specials() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(65519.99), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(f32::NEG_INFINITY), 0xfc00);
        assert_eq!(f32_to_f16(f32::NAN) & 0x7e00, 0x7e00);
        assert_eq!(f32_to_f16(-0.0), 0x8000);
        // 1 + 2^-11 is halfway between 1 and the next half: ties go to the even 1.
        assert_eq!(f32_to_f16(1.0 + 1.0 / 2048.0), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 / 2048.0), 0x3c02);
        assert_eq!(f32_to_f16(5.960_464_5e-8), 0x0001);
        assert_eq!(f32_to_f16(2.980_232_2e-8), 0x0000);
        assert_eq!(f32_to_f16(2.980_233e-8), 0x0001);
        // Every half survives the round trip.
        for h in 0..=0xffffu16 {
            let back = f32_to_f16(f16_to_f32(h));
            if h & 0x7c00 == 0x7c00 && h & 0x3ff != 0 {
                assert_eq!(back & 0xfe00, (h & 0x8000) | 0x7e00, "{h:#x}");
            } else {
                assert_eq!(back, h, "{h:#x}");
            }
        }
    }
}
