use super::{f16x4_to_f32, load, reduce4_i32, store_lanes};
use crate::generic::q4_0::{q8_row_bytes, BLOCK_BYTES, QK};
use core::arch::wasm32::*;

/// x (m, k) f32 -> xq (m, q8_row_bytes(k)), bit-identical to the generic twin.
pub unsafe fn quantize_q8_0<const WIDE: bool>(x: *const f32, xq: *mut u8, m: usize, k: usize) {
    let nb = k / QK;
    let rb = q8_row_bytes::<WIDE>(k);
    let qbytes = k * if WIDE { 2 } else { 1 };
    for t in 0..m {
        let xr = x.add(t * k);
        let out = xq.add(t * rb);
        let dp = out.add(qbytes) as *mut f32;
        let bp = out.add(qbytes + 4 * nb) as *mut i32;
        for b in 0..nb {
            let p = xr.add(b * QK) as *const u8;
            let mut v = [f32x4_splat(0.0); 8];
            let mut amax = f32x4_splat(0.0);
            for (i, vi) in v.iter_mut().enumerate() {
                *vi = load(p.add(16 * i));
                amax = f32x4_pmax(amax, f32x4_abs(*vi));
            }
            amax = f32x4_pmax(amax, i32x4_shuffle::<2, 3, 0, 1>(amax, amax));
            amax = f32x4_pmax(amax, i32x4_shuffle::<1, 0, 3, 2>(amax, amax));
            let d = f32x4_extract_lane::<0>(amax) / 127.0;
            let id = f32x4_splat(if d != 0.0 { 1.0 / d } else { 0.0 });
            let mut q = [i32x4_splat(0); 8];
            let mut sum = i32x4_splat(0);
            for i in 0..8 {
                q[i] = i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_mul(v[i], id)));
                sum = i32x4_add(sum, q[i]);
            }
            let a = i16x8_narrow_i32x4(q[0], q[1]);
            let bb = i16x8_narrow_i32x4(q[2], q[3]);
            let c = i16x8_narrow_i32x4(q[4], q[5]);
            let dd = i16x8_narrow_i32x4(q[6], q[7]);
            if WIDE {
                let o = out.add(b * QK * 2) as *mut v128;
                v128_store(o, i16x8_shuffle::<0, 2, 4, 6, 8, 10, 12, 14>(a, bb));
                v128_store(o.add(1), i16x8_shuffle::<0, 2, 4, 6, 8, 10, 12, 14>(c, dd));
                v128_store(o.add(2), i16x8_shuffle::<1, 3, 5, 7, 9, 11, 13, 15>(a, bb));
                v128_store(o.add(3), i16x8_shuffle::<1, 3, 5, 7, 9, 11, 13, 15>(c, dd));
            } else {
                let o = out.add(b * QK) as *mut v128;
                v128_store(o, i8x16_narrow_i16x8(a, bb));
                v128_store(o.add(1), i8x16_narrow_i16x8(c, dd));
            }
            let s = i32x4_add(sum, i32x4_shuffle::<2, 3, 0, 1>(sum, sum));
            let s = i32x4_extract_lane::<0>(s) + i32x4_extract_lane::<1>(s);
            dp.add(b).write_unaligned(d);
            bp.add(b).write_unaligned(-8 * s);
        }
    }
}

struct Q8Row {
    qbytes: usize,
    nb: usize,
    xrb: usize,
}

/// W (n, k) Q4_0 @ xq (m, k) Q8_0 -> y (m, n), rows r0..r1, four rows per pass over the
/// weights and up to four tokens per pass over those rows.
pub unsafe fn matmul_q4_0_q8_0<const WIDE: bool>(
    w: *const u8,
    xq: *const u8,
    y: *mut f32,
    m: usize,
    n: usize,
    k: usize,
    r0: usize,
    r1: usize,
) {
    let r1 = if r1 < n { r1 } else { n };
    let nb = k / QK;
    let wrb = nb * BLOCK_BYTES;
    let geo = Q8Row { qbytes: k * if WIDE { 2 } else { 1 }, nb, xrb: q8_row_bytes::<WIDE>(k) };
    let mut r = r0;
    while r < r1 {
        let last = r1 - 1;
        let row = |i: usize| w.add((if r + i < last { r + i } else { last }) * wrb);
        let wp = [row(0), row(1), row(2), row(3)];
        let rows = if r1 - r < 4 { r1 - r } else { 4 };
        let mut t = 0;
        while t + 4 <= m {
            tile::<4>(wp, xq, &geo, y, n, t, r, rows);
            t += 4;
        }
        while t < m {
            tile::<1>(wp, xq, &geo, y, n, t, r, rows);
            t += 1;
        }
        r += 4;
    }
}

#[inline(always)]
unsafe fn tile<const T: usize>(
    wp: [*const u8; 4],
    xq: *const u8,
    g: &Q8Row,
    y: *mut f32,
    n: usize,
    t0: usize,
    r: usize,
    rows: usize,
) {
    let mut acc = [f32x4_splat(0.0); T];
    for b in 0..g.nb {
        let bo = b * BLOCK_BYTES;
        let h = u32x4(
            (wp[0].add(bo) as *const u16).read_unaligned() as u32,
            (wp[1].add(bo) as *const u16).read_unaligned() as u32,
            (wp[2].add(bo) as *const u16).read_unaligned() as u32,
            (wp[3].add(bo) as *const u16).read_unaligned() as u32,
        );
        let dw = f16x4_to_f32(h);
        let mut s = [[i32x4_splat(0); 4]; T];
        for i in 0..4 {
            let q = load(wp[i].add(bo + 2));
            block_dots::<T>(q, xq, g, t0, b, i, &mut s);
        }
        for tt in 0..T {
            let xr = xq.add((t0 + tt) * g.xrb);
            let da = (xr.add(g.qbytes + 4 * b) as *const f32).read_unaligned();
            let bias = (xr.add(g.qbytes + 4 * g.nb + 4 * b) as *const i32).read_unaligned();
            let isum = i32x4_add(
                reduce4_i32(s[tt][0], s[tt][1], s[tt][2], s[tt][3]),
                i32x4_splat(bias),
            );
            let scale = f32x4_mul(dw, f32x4_splat(da));
            acc[tt] = f32x4_add(acc[tt], f32x4_mul(f32x4_convert_i32x4(isum), scale));
        }
    }
    for (tt, a) in acc.iter().enumerate() {
        store_lanes(y.add((t0 + tt) * n + r), *a, rows);
    }
}

/// Nibbles as u16 lanes: q & 15, q >> 4 & 15, q >> 8 & 15, q >> 12 pair with the
/// activation groups a[2i], a[2i+16], a[2i+1], a[2i+17] (i16, see `generic::q4_0`).
#[cfg(not(target_feature = "relaxed-simd"))]
#[inline(always)]
unsafe fn block_dots<const T: usize>(
    q: v128,
    xq: *const u8,
    g: &Q8Row,
    t0: usize,
    b: usize,
    i: usize,
    s: &mut [[v128; 4]; T],
) {
    let mask = u16x8_splat(0x000f);
    let n0 = v128_and(q, mask);
    let n1 = v128_and(u16x8_shr(q, 4), mask);
    let n2 = v128_and(u16x8_shr(q, 8), mask);
    let n3 = u16x8_shr(q, 12);
    for (tt, st) in s.iter_mut().enumerate() {
        let a = xq.add((t0 + tt) * g.xrb + b * QK * 2);
        let d01 = i32x4_add(i32x4_dot_i16x8(n0, load(a)), i32x4_dot_i16x8(n1, load(a.add(16))));
        let d23 =
            i32x4_add(i32x4_dot_i16x8(n2, load(a.add(32))), i32x4_dot_i16x8(n3, load(a.add(48))));
        st[i] = i32x4_add(d01, d23);
    }
}

/// Low nibbles pair with a[0..16], high nibbles with a[16..32]; the nibble (0..15) is the
/// 7-bit operand, so the relaxed dot product is exact on every engine.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn block_dots<const T: usize>(
    q: v128,
    xq: *const u8,
    g: &Q8Row,
    t0: usize,
    b: usize,
    i: usize,
    s: &mut [[v128; 4]; T],
) {
    let mask = u8x16_splat(0x0f);
    let lo = v128_and(q, mask);
    let hi = v128_and(u16x8_shr(q, 4), mask);
    for (tt, st) in s.iter_mut().enumerate() {
        let a = xq.add((t0 + tt) * g.xrb + b * QK);
        let d = i32x4_relaxed_dot_i8x16_i7x16_add(load(a), lo, i32x4_splat(0));
        st[i] = i32x4_relaxed_dot_i8x16_i7x16_add(load(a.add(16)), hi, d);
    }
}
