use super::elementwise::softmax_row;
use super::{hsum_f32, loadf, reduce4_f32, storef, ExpConsts};
use crate::generic::attention::AttentionShape;
use crate::generic::f16::{f16_to_f32_finite, F16_EXP_REBIAS};
use crate::generic::paged_kv::PagedShape;
use core::arch::wasm32::*;
use core::marker::PhantomData;

/// q (m, n_heads, head_dim), caches (n_kv_heads, capacity, head_dim) -> out like q,
/// heads h0..h1; `scores` holds kv_len floats.
pub unsafe fn attention_f32(
    q: *const f32,
    k_cache: *const f32,
    v_cache: *const f32,
    out: *mut f32,
    scores: *mut f32,
    s: &AttentionShape,
    h0: usize,
    h1: usize,
) {
    if s.n_kv_heads == 0 || s.n_heads % s.n_kv_heads != 0 {
        return;
    }
    let c = ExpConsts::new();
    let hd = s.head_dim;
    let group = s.n_heads / s.n_kv_heads;
    let h1 = if h1 < s.n_heads { h1 } else { s.n_heads };
    for t in 0..s.m {
        let len = s.visible(t);
        for h in h0..h1 {
            let head = (h / group) * s.capacity * hd;
            let qo = (t * s.n_heads + h) * hd;
            let k = Contiguous::<F32>(k_cache.add(head) as *const u8, s.capacity, PhantomData);
            let v = Contiguous::<F32>(v_cache.add(head) as *const u8, s.capacity, PhantomData);
            attend(q.add(qo), k, v, scores, out.add(qo), len, hd, s.scale, &c);
        }
    }
}

/// q (m, n_heads, head_dim) over paged K and V regions (see `generic::paged_kv`) -> out like
/// q, heads h0..h1; `scores` holds n_heads * kv_len floats (head h's at h * kv_len).
pub unsafe fn attention_paged(
    q: *const f32,
    out: *mut f32,
    k_base: *const u8,
    v_base: *const u8,
    table: *const i32,
    scores: *mut f32,
    s: &PagedShape,
    h0: usize,
    h1: usize,
) {
    let kv = &s.kv;
    if kv.n_kv_heads == 0 || s.n_heads % kv.n_kv_heads != 0 {
        return;
    }
    let c = ExpConsts::new();
    let h1 = if h1 < s.n_heads { h1 } else { s.n_heads };
    let row = s.n_heads * kv.head_dim;
    for t in 0..s.m {
        let (qt, ot) = (q.add(t * row), out.add(t * row));
        let r = PagedRow {
            k_base,
            v_base,
            table,
            scores,
            len: s.visible(t),
            h0,
            h1,
        };
        if kv.f16 {
            attend_paged::<F16>(qt, ot, &r, s, &c);
        } else {
            attend_paged::<F32>(qt, ot, &r, s, &c);
        }
    }
}

/// One query row's view of a paged call: regions, table, score rows, visible positions and
/// the heads to compute.
struct PagedRow {
    k_base: *const u8,
    v_base: *const u8,
    table: *const i32,
    scores: *mut f32,
    len: usize,
    h0: usize,
    h1: usize,
}

/// Heads h0..h1 of one query row, block by block over all of them, so that each block of a
/// region is read front to back (one head's rows of a block, a few KiB, would restart the
/// hardware prefetcher at every block). Every output takes the f32 steps of `attend`.
#[inline(always)]
unsafe fn attend_paged<T: Item>(
    q: *const f32,
    out: *mut f32,
    r: &PagedRow,
    s: &PagedShape,
    c: &ExpConsts,
) {
    let kv = &s.kv;
    let (hd, bs) = (kv.head_dim, kv.block_size);
    let group = s.n_heads / kv.n_kv_heads;
    let head_bytes = bs * hd * T::BYTES;
    let block_bytes = kv.n_kv_heads * head_bytes;
    let ic = T::consts();
    let sc = |h: usize| r.scores.add(h * s.kv_len);
    let block = |base: *const u8, b: usize| base.add(*r.table.add(b) as usize * block_bytes);
    let mut b = 0;
    while b * bs < r.len {
        let rows = if r.len - b * bs < bs {
            r.len - b * bs
        } else {
            bs
        };
        let kb = block(r.k_base, b);
        for h in r.h0..r.h1 {
            let kh = kb.add(h / group * head_bytes);
            scores_rows::<T>(&ic, q.add(h * hd), kh, sc(h).add(b * bs), rows, hd, s.scale);
        }
        b += 1;
    }
    for h in r.h0..r.h1 {
        softmax_row(sc(h), sc(h), r.len, c);
        for i in 0..hd {
            *out.add(h * hd + i) = 0.0;
        }
    }
    let mut b = 0;
    while b * bs < r.len {
        let rows = if r.len - b * bs < bs {
            r.len - b * bs
        } else {
            bs
        };
        let vb = block(r.v_base, b);
        for h in r.h0..r.h1 {
            let vh = Contiguous::<T>(vb.add(h / group * head_bytes), rows, PhantomData);
            accumulate(&ic, sc(h).add(b * bs), vh, out.add(h * hd), rows, hd);
        }
        b += 1;
    }
}

/// Scores, softmax and weighted sum of one query row of one head.
#[inline(always)]
unsafe fn attend<R: HeadRows>(
    q: *const f32,
    k: R,
    v: R,
    scores: *mut f32,
    out: *mut f32,
    len: usize,
    hd: usize,
    scale: f32,
    c: &ExpConsts,
) {
    let ic = R::Item::consts();
    let rows = k.block_rows();
    let mut b = 0;
    while b * rows < len {
        let n = if len - b * rows < rows {
            len - b * rows
        } else {
            rows
        };
        scores_rows::<R::Item>(&ic, q, k.block(b), scores.add(b * rows), n, hd, scale);
        b += 1;
    }
    softmax_row(scores, scores, len, c);
    weighted_sum(&ic, scores, v, out, len, hd);
}

/// An item type of a KV cache, read as f32 (with constants `C`, built once per call).
trait Item {
    const BYTES: usize;
    type C: Copy;
    fn consts() -> Self::C;
    /// Items i..i+4 of the row at p.
    unsafe fn load4(c: &Self::C, p: *const u8, i: usize) -> v128;
    /// Item i of the row at p.
    unsafe fn value(p: *const u8, i: usize) -> f32;
}

struct F32;

impl Item for F32 {
    const BYTES: usize = 4;
    type C = ();
    #[inline(always)]
    fn consts() {}
    #[inline(always)]
    unsafe fn load4(_: &(), p: *const u8, i: usize) -> v128 {
        loadf((p as *const f32).add(i))
    }
    #[inline(always)]
    unsafe fn value(p: *const u8, i: usize) -> f32 {
        *(p as *const f32).add(i)
    }
}

struct F16;

/// Constants of `F16::load4`, hidden from LLVM, which would otherwise rematerialize them
/// with `v128.const` inside the loops (V8 does not hoist those).
#[derive(Clone, Copy)]
struct F16Consts {
    zero: v128,
    sign_mag: v128,
    rebias: v128,
}

impl Item for F16 {
    const BYTES: usize = 2;
    type C = F16Consts;
    #[inline(always)]
    fn consts() -> F16Consts {
        core::hint::black_box(F16Consts {
            zero: u16x8_splat(0),
            sign_mag: u32x4_splat(0x8fff_ffff),
            rebias: f32x4_splat(F16_EXP_REBIAS),
        })
    }
    /// `generic::f16::f16_to_f32_finite` on four halves: each half moves to the top of its
    /// u32 lane, an arithmetic shift puts exponent and mantissa in place (the mask drops the
    /// sign's copies), 2^112 rebiases.
    #[inline(always)]
    unsafe fn load4(c: &F16Consts, p: *const u8, i: usize) -> v128 {
        let h = v128_load64_zero(p.add(2 * i) as *const u64);
        let top = i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(c.zero, h);
        f32x4_mul(v128_and(i32x4_shr(top, 3), c.sign_mag), c.rebias)
    }
    #[inline(always)]
    unsafe fn value(p: *const u8, i: usize) -> f32 {
        f16_to_f32_finite((p.add(2 * i) as *const u16).read_unaligned())
    }
}

/// Where one kv head's rows are: blocks of `block_rows()` consecutive rows (head_dim items
/// each), block b starting at `block(b)`.
trait HeadRows: Copy {
    type Item: Item;
    fn block_rows(self) -> usize;
    unsafe fn block(self, b: usize) -> *const u8;
}

/// Rows one after the other: a single block.
struct Contiguous<T>(*const u8, usize, PhantomData<T>);

impl<T> Clone for Contiguous<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Contiguous<T> {}

impl<T: Item> HeadRows for Contiguous<T> {
    type Item = T;
    #[inline(always)]
    fn block_rows(self) -> usize {
        self.1
    }
    #[inline(always)]
    unsafe fn block(self, _: usize) -> *const u8 {
        self.0
    }
}

/// Scores of `len` consecutive key rows at kh: sc[j] = q . k_j * scale, each dot product as
/// `generic::matmul::dot_f32` adds it, four keys at a time where they are.
#[inline(always)]
unsafe fn scores_rows<T: Item>(
    ic: &T::C,
    q: *const f32,
    kh: *const u8,
    sc: *mut f32,
    len: usize,
    hd: usize,
    scale: f32,
) {
    let dv = hd - hd % 4;
    let row = |j: usize| kh.add(j * hd * T::BYTES);
    let mut j = 0;
    while j + 4 <= len {
        let mut a = [f32x4_splat(0.0); 4];
        let mut i = 0;
        while i < dv {
            let qv = loadf(q.add(i));
            for (r, ar) in a.iter_mut().enumerate() {
                *ar = f32x4_add(*ar, f32x4_mul(qv, T::load4(ic, row(j + r), i)));
            }
            i += 4;
        }
        let mut sum = reduce4_f32(a[0], a[1], a[2], a[3]);
        for i in dv..hd {
            let kv = f32x4(
                T::value(row(j), i),
                T::value(row(j + 1), i),
                T::value(row(j + 2), i),
                T::value(row(j + 3), i),
            );
            sum = f32x4_add(sum, f32x4_mul(kv, f32x4_splat(*q.add(i))));
        }
        storef(sc.add(j), f32x4_mul(sum, f32x4_splat(scale)));
        j += 4;
    }
    while j < len {
        let mut a = f32x4_splat(0.0);
        let mut i = 0;
        while i < dv {
            a = f32x4_add(a, f32x4_mul(loadf(q.add(i)), T::load4(ic, row(j), i)));
            i += 4;
        }
        let mut sum = hsum_f32(a);
        for i in dv..hd {
            sum += *q.add(i) * T::value(row(j), i);
        }
        *sc.add(j) = sum * scale;
        j += 1;
    }
}

/// out (hd) = sum_j p_j * V_j over the `len` value rows of `v`, in increasing j for every
/// element.
#[inline(always)]
unsafe fn weighted_sum<R: HeadRows>(
    ic: &<R::Item as Item>::C,
    p: *const f32,
    v: R,
    out: *mut f32,
    len: usize,
    hd: usize,
) {
    let mut i = 0;
    while i + 16 <= hd {
        let mut a = [f32x4_splat(0.0); 4];
        for_rows(v, len, hd, |row, j| {
            let pj = f32x4_splat(*p.add(j));
            for (c, ac) in a.iter_mut().enumerate() {
                *ac = f32x4_add(*ac, f32x4_mul(pj, R::Item::load4(ic, row, i + 4 * c)));
            }
        });
        for (c, ac) in a.iter().enumerate() {
            storef(out.add(i + 4 * c), *ac);
        }
        i += 16;
    }
    while i + 4 <= hd {
        let mut a = f32x4_splat(0.0);
        for_rows(v, len, hd, |row, j| {
            a = f32x4_add(
                a,
                f32x4_mul(f32x4_splat(*p.add(j)), R::Item::load4(ic, row, i)),
            );
        });
        storef(out.add(i), a);
        i += 4;
    }
    while i < hd {
        let mut a = 0.0f32;
        for_rows(v, len, hd, |row, j| a += *p.add(j) * R::Item::value(row, i));
        *out.add(i) = a;
        i += 1;
    }
}

/// out (hd) += sum_j p_j * V_j over the `len` rows of `v`, in increasing j for every element,
/// each sum starting from the value out holds.
#[inline(always)]
unsafe fn accumulate<R: HeadRows>(
    ic: &<R::Item as Item>::C,
    p: *const f32,
    v: R,
    out: *mut f32,
    len: usize,
    hd: usize,
) {
    let mut i = 0;
    while i + 16 <= hd {
        let mut a = [0, 1, 2, 3].map(|c| loadf(out.add(i + 4 * c)));
        for_rows(v, len, hd, |row, j| {
            let pj = f32x4_splat(*p.add(j));
            for (c, ac) in a.iter_mut().enumerate() {
                *ac = f32x4_add(*ac, f32x4_mul(pj, R::Item::load4(ic, row, i + 4 * c)));
            }
        });
        for (c, ac) in a.iter().enumerate() {
            storef(out.add(i + 4 * c), *ac);
        }
        i += 16;
    }
    while i + 4 <= hd {
        let mut a = loadf(out.add(i));
        for_rows(v, len, hd, |row, j| {
            a = f32x4_add(
                a,
                f32x4_mul(f32x4_splat(*p.add(j)), R::Item::load4(ic, row, i)),
            );
        });
        storef(out.add(i), a);
        i += 4;
    }
    while i < hd {
        let mut a = *out.add(i);
        for_rows(v, len, hd, |row, j| a += *p.add(j) * R::Item::value(row, i));
        *out.add(i) = a;
        i += 1;
    }
}

/// Calls `f(row, j)` for the rows j = 0..len of `v` in order.
#[inline(always)]
unsafe fn for_rows<R: HeadRows>(v: R, len: usize, hd: usize, mut f: impl FnMut(*const u8, usize)) {
    let rows = v.block_rows();
    let mut b = 0;
    while b * rows < len {
        let base = v.block(b);
        let n = if len - b * rows < rows {
            len - b * rows
        } else {
            rows
        };
        for r in 0..n {
            f(base.add(r * hd * R::Item::BYTES), b * rows + r);
        }
        b += 1;
    }
}
