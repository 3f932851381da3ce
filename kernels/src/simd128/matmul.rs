use super::{f16x4_to_f32, loadf, madd, reduce4_f32, store_lanes, F16Consts};
use crate::generic::f16::f16_to_f32;
use core::arch::wasm32::*;

/// How a weight row is read: `SPAN` values per step into one f32x4 accumulator.
trait Weights: Copy {
    const SPAN: usize;
    unsafe fn step(self, row: usize, j: usize, x: *const f32, acc: v128) -> v128;
    unsafe fn value(self, row: usize, j: usize) -> f32;
}

#[derive(Clone, Copy)]
struct F32Rows(*const f32, usize);

impl Weights for F32Rows {
    const SPAN: usize = 4;
    #[inline(always)]
    unsafe fn step(self, row: usize, j: usize, x: *const f32, acc: v128) -> v128 {
        madd(loadf(self.0.add(row * self.1 + j)), loadf(x.add(j)), acc)
    }
    #[inline(always)]
    unsafe fn value(self, row: usize, j: usize) -> f32 {
        *self.0.add(row * self.1 + j)
    }
}

#[derive(Clone, Copy)]
struct F16Rows(*const u16, usize, F16Consts);

impl Weights for F16Rows {
    const SPAN: usize = 8;
    #[inline(always)]
    unsafe fn step(self, row: usize, j: usize, x: *const f32, acc: v128) -> v128 {
        let h = v128_load(self.0.add(row * self.1 + j) as *const v128);
        let lo = f16x4_to_f32(u32x4_extend_low_u16x8(h), &self.2);
        let hi = f16x4_to_f32(u32x4_extend_high_u16x8(h), &self.2);
        madd(hi, loadf(x.add(j + 4)), madd(lo, loadf(x.add(j)), acc))
    }
    #[inline(always)]
    unsafe fn value(self, row: usize, j: usize) -> f32 {
        f16_to_f32(*self.0.add(row * self.1 + j))
    }
}

/// W (n, k) f32 @ x (m, k) -> y (m, n), rows r0..r1.
pub unsafe fn matmul_f32_f32(
    w: *const f32,
    x: *const f32,
    y: *mut f32,
    m: usize,
    n: usize,
    k: usize,
    r0: usize,
    r1: usize,
) {
    matmul(F32Rows(w, k), x, y, m, n, k, r0, r1);
}

/// W (n, k) f16 @ x (m, k) -> y (m, n), rows r0..r1.
pub unsafe fn matmul_f16_f32(
    w: *const u16,
    x: *const f32,
    y: *mut f32,
    m: usize,
    n: usize,
    k: usize,
    r0: usize,
    r1: usize,
) {
    matmul(F16Rows(w, k, F16Consts::new()), x, y, m, n, k, r0, r1);
}

#[inline(always)]
unsafe fn matmul<W: Weights>(
    w: W,
    x: *const f32,
    y: *mut f32,
    m: usize,
    n: usize,
    k: usize,
    r0: usize,
    r1: usize,
) {
    let r1 = if r1 < n { r1 } else { n };
    let mut r = r0;
    while r < r1 {
        let last = r1 - 1;
        let rows = [0, 1, 2, 3].map(|i| if r + i < last { r + i } else { last });
        let count = if r1 - r < 4 { r1 - r } else { 4 };
        let mut t = 0;
        while t + 2 <= m {
            let (s0, s1) = tile2(w, rows, x.add(t * k), x.add((t + 1) * k), k);
            store_lanes(y.add(t * n + r), s0, count);
            store_lanes(y.add((t + 1) * n + r), s1, count);
            t += 2;
        }
        if t < m {
            store_lanes(y.add(t * n + r), tile1(w, rows, x.add(t * k), k), count);
        }
        r += 4;
    }
}

/// Rows `rows` (four, clamped) times one token row x -> the four dot products, lane per row.
#[inline(always)]
unsafe fn tile1<W: Weights>(w: W, rows: [usize; 4], x: *const f32, k: usize) -> v128 {
    let kv = k - k % W::SPAN;
    let z = f32x4_splat(0.0);
    let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
    let mut j = 0;
    while j < kv {
        a0 = w.step(rows[0], j, x, a0);
        a1 = w.step(rows[1], j, x, a1);
        a2 = w.step(rows[2], j, x, a2);
        a3 = w.step(rows[3], j, x, a3);
        j += W::SPAN;
    }
    finish(w, rows, x, k, kv, reduce4_f32(a0, a1, a2, a3))
}

/// As `tile1` for two token rows sharing the weight loads.
#[inline(always)]
unsafe fn tile2<W: Weights>(
    w: W,
    rows: [usize; 4],
    x: *const f32,
    x2: *const f32,
    k: usize,
) -> (v128, v128) {
    let kv = k - k % W::SPAN;
    let z = f32x4_splat(0.0);
    let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
    let (mut b0, mut b1, mut b2, mut b3) = (z, z, z, z);
    let mut j = 0;
    while j < kv {
        a0 = w.step(rows[0], j, x, a0);
        b0 = w.step(rows[0], j, x2, b0);
        a1 = w.step(rows[1], j, x, a1);
        b1 = w.step(rows[1], j, x2, b1);
        a2 = w.step(rows[2], j, x, a2);
        b2 = w.step(rows[2], j, x2, b2);
        a3 = w.step(rows[3], j, x, a3);
        b3 = w.step(rows[3], j, x2, b3);
        j += W::SPAN;
    }
    (
        finish(w, rows, x, k, kv, reduce4_f32(a0, a1, a2, a3)),
        finish(w, rows, x2, k, kv, reduce4_f32(b0, b1, b2, b3)),
    )
}

#[inline(always)]
unsafe fn finish<W: Weights>(
    w: W,
    rows: [usize; 4],
    x: *const f32,
    k: usize,
    kv: usize,
    mut sum: v128,
) -> v128 {
    for j in kv..k {
        let wv = f32x4(
            w.value(rows[0], j),
            w.value(rows[1], j),
            w.value(rows[2], j),
            w.value(rows[3], j),
        );
        sum = f32x4_add(sum, f32x4_mul(wv, f32x4_splat(*x.add(j))));
    }
    sum
}
