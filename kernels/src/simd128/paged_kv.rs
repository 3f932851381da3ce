use crate::generic::f16::f32_to_f16_normal;
use crate::generic::paged_kv::PagedLayout;
use core::arch::wasm32::*;

/// Writes positions pos0..pos0+count of every kv head from `src` (f32, item (g, s, i) at
/// `g * head_stride + s * row_stride + i`) into the region at `base`, converted to the item
/// type; bit for bit what `generic::paged_kv::store_kv_paged` writes.
pub unsafe fn store_kv_paged(
    src: *const f32,
    head_stride: usize,
    row_stride: usize,
    base: *mut u8,
    table: *const i32,
    kv: &PagedLayout,
    pos0: usize,
    count: usize,
) {
    let hd = kv.head_dim;
    let hv = hd - hd % 4;
    let c = ToF16::new();
    for s in 0..count {
        let p = pos0 + s;
        let block = *table.add(p / kv.block_size) as usize;
        let row = base.add(block * kv.block_stride() + p % kv.block_size * hd * kv.item_bytes());
        for g in 0..kv.n_kv_heads {
            let from = src.add(g * head_stride + s * row_stride);
            let to = row.add(kv.head_start(g));
            let mut i = 0;
            if kv.f16 {
                while i < hv {
                    let h = f32x4_to_f16(v128_load(from.add(i) as *const v128), &c);
                    v128_store64_lane::<0>(u16x8_narrow_i32x4(h, h), to.add(2 * i) as *mut u64);
                    i += 4;
                }
                for i in hv..hd {
                    (to.add(2 * i) as *mut u16).write_unaligned(f32_to_f16_normal(*from.add(i)));
                }
            } else {
                while i < hv {
                    v128_store(
                        to.add(4 * i) as *mut v128,
                        v128_load(from.add(i) as *const v128),
                    );
                    i += 4;
                }
                for i in hv..hd {
                    (to.add(4 * i) as *mut f32).write_unaligned(*from.add(i));
                }
            }
        }
    }
}

/// Constants of `f32x4_to_f16`, hidden from LLVM, which would otherwise rematerialize them
/// with `v128.const` inside the loops (V8 does not hoist those).
#[derive(Clone, Copy)]
struct ToF16 {
    sign: v128,
    abs: v128,
    one: v128,
    rebias: v128,
    magic: v128,
    nan_bit: v128,
    mant: v128,
    inf32: v128,
    inf16: v128,
    small: v128,
    big: v128,
    zero: v128,
}

impl ToF16 {
    #[inline(always)]
    fn new() -> Self {
        core::hint::black_box(ToF16 {
            sign: u32x4_splat(0x8000),
            abs: u32x4_splat(0x7fff_ffff),
            one: u32x4_splat(1),
            rebias: u32x4_splat(((15 - 127) << 23) as u32 + 0xfff),
            magic: u32x4_splat(126 << 23),
            nan_bit: u32x4_splat(0x200),
            mant: u32x4_splat(0x3ff),
            inf32: u32x4_splat(0x7f80_0000),
            inf16: u32x4_splat(0x7c00),
            small: u32x4_splat(113 << 23),
            big: u32x4_splat(143 << 23),
            zero: u32x4_splat(0),
        })
    }
}

/// `generic::f16::f32_to_f16_normal` on four lanes (half bits in the low 16 bits of each u32).
#[inline(always)]
fn f32x4_to_f16(x: v128, c: &ToF16) -> v128 {
    let sign = v128_and(u32x4_shr(x, 16), c.sign);
    let a = v128_and(x, c.abs);
    // Normal halves: rebias, then round to nearest even on the 13 dropped bits; a carry
    // into the exponent is right, up to infinity.
    let odd = v128_and(u32x4_shr(a, 13), c.one);
    let normal = u32x4_shr(i32x4_add(i32x4_add(a, c.rebias), odd), 13);
    // Subnormal halves: adding 0.5 leaves the half's bits in the mantissa, rounded to
    // nearest even by the f32 add itself.
    let sub = i32x4_sub(f32x4_add(a, c.magic), c.magic);
    // Infinity, NaN (quieted, the top of its payload kept) and overflow.
    let nan = v128_or(c.nan_bit, v128_and(u32x4_shr(a, 13), c.mant));
    let special = v128_or(c.inf16, v128_and(nan, u32x4_gt(a, c.inf32)));
    let finite = v128_bitselect(sub, normal, u32x4_lt(a, c.small));
    let h = v128_bitselect(special, finite, u32x4_ge(a, c.big));
    // Subnormal halves flushed to zero (`f32_to_f16_normal`).
    let kept = u32x4_ne(v128_and(h, c.inf16), c.zero);
    v128_or(v128_and(h, kept), sign)
}
