use super::elementwise::softmax_row;
use super::{hsum_f32, loadf, reduce4_f32, storef, ExpConsts};
use crate::generic::attention::AttentionShape;
use crate::generic::f16::{f16_to_f32, F16_EXP_REBIAS};
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
/// q, heads h0..h1; `scores` holds kv_len floats.
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
    let hd = kv.head_dim;
    let group = s.n_heads / kv.n_kv_heads;
    let h1 = if h1 < s.n_heads { h1 } else { s.n_heads };
    for t in 0..s.m {
        let len = s.visible(t);
        for h in h0..h1 {
            let g = h / group;
            let qo = (t * s.n_heads + h) * hd;
            let (qh, oh) = (q.add(qo), out.add(qo));
            if kv.f16 {
                let k = Paged::<F16>::new(k_base, table, s, g);
                let v = Paged::<F16>::new(v_base, table, s, g);
                attend(qh, k, v, scores, oh, len, hd, s.scale, &c);
            } else {
                let k = Paged::<F32>::new(k_base, table, s, g);
                let v = Paged::<F32>::new(v_base, table, s, g);
                attend(qh, k, v, scores, oh, len, hd, s.scale, &c);
            }
        }
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
    let rows = k.block_rows();
    let mut b = 0;
    while b * rows < len {
        let n = if len - b * rows < rows {
            len - b * rows
        } else {
            rows
        };
        scores_rows::<R::Item>(q, k.block(b), scores.add(b * rows), n, hd, scale);
        b += 1;
    }
    softmax_row(scores, scores, len, c);
    weighted_sum(scores, v, out, len, hd);
}

/// An item type of a KV cache, read as f32.
trait Item {
    const BYTES: usize;
    /// Items i..i+4 of the row at p.
    unsafe fn load4(p: *const u8, i: usize) -> v128;
    /// Item i of the row at p.
    unsafe fn value(p: *const u8, i: usize) -> f32;
}

struct F32;

impl Item for F32 {
    const BYTES: usize = 4;
    #[inline(always)]
    unsafe fn load4(p: *const u8, i: usize) -> v128 {
        loadf((p as *const f32).add(i))
    }
    #[inline(always)]
    unsafe fn value(p: *const u8, i: usize) -> f32 {
        *(p as *const f32).add(i)
    }
}

struct F16;

impl Item for F16 {
    const BYTES: usize = 2;
    /// `generic::f16::f16_to_f32` on four halves, bit for bit: each half moves to the top of
    /// its u32 lane, an arithmetic shift puts exponent and mantissa in place (the mask drops
    /// the sign's copies), 2^112 rebiases; an all-ones exponent becomes infinity or NaN.
    #[inline(always)]
    unsafe fn load4(p: *const u8, i: usize) -> v128 {
        let h = v128_load64_zero(p.add(2 * i) as *const u64);
        let top = i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(u16x8_splat(0), h);
        let v = v128_and(i32x4_shr(top, 3), u32x4_splat(0x8fff_ffff));
        let special = i32x4_eq(
            v128_and(v, u32x4_splat(0x0f80_0000)),
            u32x4_splat(0x0f80_0000),
        );
        let f = f32x4_mul(v, f32x4_splat(F16_EXP_REBIAS));
        v128_bitselect(v128_or(v, u32x4_splat(0x7f80_0000)), f, special)
    }
    #[inline(always)]
    unsafe fn value(p: *const u8, i: usize) -> f32 {
        f16_to_f32((p.add(2 * i) as *const u16).read_unaligned())
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

/// Kv head g of a paged region: block b of the sequence is block `table[b]` of the region.
struct Paged<T> {
    base: *const u8,
    table: *const i32,
    /// Bytes from one region block to the next, and from the block to head g's rows.
    block_bytes: usize,
    head_bytes: usize,
    rows: usize,
    item: PhantomData<T>,
}

impl<T> Clone for Paged<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Paged<T> {}

impl<T: Item> Paged<T> {
    #[inline(always)]
    unsafe fn new(base: *const u8, table: *const i32, s: &PagedShape, g: usize) -> Self {
        let head_bytes = s.kv.block_size * s.kv.head_dim * T::BYTES;
        Paged {
            base,
            table,
            block_bytes: s.kv.n_kv_heads * head_bytes,
            head_bytes: g * head_bytes,
            rows: s.kv.block_size,
            item: PhantomData,
        }
    }
}

impl<T: Item> HeadRows for Paged<T> {
    type Item = T;
    #[inline(always)]
    fn block_rows(self) -> usize {
        self.rows
    }
    #[inline(always)]
    unsafe fn block(self, b: usize) -> *const u8 {
        let id = *self.table.add(b) as usize;
        self.base.add(id * self.block_bytes + self.head_bytes)
    }
}

/// Scores of `len` consecutive key rows at kh: sc[j] = q . k_j * scale, each dot product as
/// `generic::matmul::dot_f32` adds it, four keys at a time where they are.
#[inline(always)]
unsafe fn scores_rows<T: Item>(
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
                *ar = f32x4_add(*ar, f32x4_mul(qv, T::load4(row(j + r), i)));
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
            a = f32x4_add(a, f32x4_mul(loadf(q.add(i)), T::load4(row(j), i)));
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
unsafe fn weighted_sum<R: HeadRows>(p: *const f32, v: R, out: *mut f32, len: usize, hd: usize) {
    let mut i = 0;
    while i + 16 <= hd {
        let mut a = [f32x4_splat(0.0); 4];
        for_rows(v, len, hd, |row, j| {
            let pj = f32x4_splat(*p.add(j));
            for (c, ac) in a.iter_mut().enumerate() {
                *ac = f32x4_add(*ac, f32x4_mul(pj, R::Item::load4(row, i + 4 * c)));
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
            a = f32x4_add(a, f32x4_mul(f32x4_splat(*p.add(j)), R::Item::load4(row, i)));
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
