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

/// 2^112: moves a half exponent bias (15) to a single one (127).
pub const F16_EXP_REBIAS: f32 = 5.192_296_858_534_828e33;

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
}
