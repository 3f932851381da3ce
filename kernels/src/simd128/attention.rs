use super::elementwise::softmax_row;
use super::{
    f16_top_scaled, hsum_f32, loadf, madd, reduce4_f32, storef, unrolled, ExpConsts, F16_TOP_KEEP,
};
use crate::generic::attention::AttentionShape;
use crate::generic::f16::{f16_to_f32_finite, F16_EXP_REBIAS};
use crate::generic::paged_kv::{PagedShape, PAGED_ROWS};
use core::arch::wasm32::*;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

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

/// Query vectors (rows times heads of a kv head) that read f16 rows in place, converting each
/// item as they load it (a pair loads it once for both); more convert the rows into a buffer
/// first. Converting adds a store and a load to every item: with four or fewer readers (a
/// decode step's grouped heads), in place was 1.15-1.6x faster; with eight, 0.96x.
const RAW_READERS: usize = 4;

/// f32 items of one kv head's rows of one block converted at a time (a stack buffer).
const CONVERTED: usize = 16 * 256;

/// q (m, n_heads, head_dim) over paged K and V regions (see `generic::paged_kv`) -> out like
/// q, heads h0..h1; `scores` holds min(m, PAGED_ROWS) * n_heads * kv_len floats (row t's
/// head h at ((t % PAGED_ROWS) * n_heads + h) * kv_len).
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
    let r = PagedRows {
        q,
        out,
        k_base,
        v_base,
        table,
        scores,
        t0: 0,
        t1: 0,
        h0,
        h1,
    };
    let mut t0 = 0;
    while t0 < s.m {
        let t1 = if s.m - t0 < PAGED_ROWS {
            s.m
        } else {
            t0 + PAGED_ROWS
        };
        // One run of kv heads (their query heads) at a time, so that each pass reads one
        // stream of blocks front to back.
        let step = kv.heads_per_run() * (s.n_heads / kv.n_kv_heads);
        let mut h = h0;
        while h < h1 {
            let end = (h / step + 1) * step;
            let rows = PagedRows {
                t0,
                t1,
                h0: h,
                h1: if end < h1 { end } else { h1 },
                ..r
            };
            if kv.f16 {
                if s.window > 0 {
                    attend_paged::<F16, true>(&rows, s, &c);
                } else {
                    attend_paged::<F16, false>(&rows, s, &c);
                }
            } else {
                if s.window > 0 {
                    attend_paged::<F32, true>(&rows, s, &c);
                } else {
                    attend_paged::<F32, false>(&rows, s, &c);
                }
            }
            h = rows.h1;
        }
        t0 = t1;
    }
}

/// A group of query rows of a paged call: regions, table, score rows, and the rows t0..t1 and
/// heads h0..h1 to compute.
#[derive(Clone, Copy)]
struct PagedRows {
    q: *const f32,
    out: *mut f32,
    k_base: *const u8,
    v_base: *const u8,
    table: *const i32,
    scores: *mut f32,
    t0: usize,
    t1: usize,
    h0: usize,
    h1: usize,
}

/// Rows t0..t1, heads h0..h1, block by block over all of them, so that each block of a region
/// is read front to back (one head's rows of a block, a few KiB, would restart the hardware
/// prefetcher at every block). A kv head's rows of a block are read as f32 once for every
/// query row and head that uses them: f16 ones are converted into a stack buffer, exactly as
/// `T::load4` and `T::value` read them, a piece of the block at a time when it is larger than
/// the buffer. Every output takes the f32 steps of `attend`, whatever the rows and pieces.
#[inline(always)]
unsafe fn attend_paged<T: Item, const WINDOW: bool>(
    r: &PagedRows,
    s: &PagedShape,
    c: &ExpConsts,
) {
    let kv = &s.kv;
    let (hd, bs) = (kv.head_dim, kv.block_size);
    let group = s.n_heads / kv.n_kv_heads;
    let ic = T::consts();
    let row = s.n_heads * hd;
    let sc = |t: usize, h: usize| r.scores.add(((t - r.t0) * s.n_heads + h) * s.kv_len);
    // Rows see more positions as t grows: the last row sees the most.
    let longest = s.visible(r.t1 - 1);
    let (g0, g1) = (r.h0 / group, (r.h1 - 1) / group + 1);
    // Rows read as f32 at a time. 0: read in place, when few query vectors read them (see
    // `RAW_READERS`) or a row does not fit.
    let heads = if group < r.h1 - r.h0 {
        group
    } else {
        r.h1 - r.h0
    };
    let shared = (r.t1 - r.t0) * heads > RAW_READERS;
    let piece = if T::BYTES == 4 {
        bs
    } else if shared {
        CONVERTED / hd
    } else {
        0
    };
    let mut buffer = MaybeUninit::<[f32; CONVERTED]>::uninit();
    let p = Pieces {
        r,
        s,
        longest,
        g0,
        g1,
        group,
        piece,
        converted: buffer.as_mut_ptr() as *mut f32,
    };
    // Read in place, f16 keys may meet queries scaled by `T::SCALE`: looked at once per call,
    // not once per block.
    let dv = hd - hd % 4;
    let scaled = piece == 0
        && T::SCALE != 1.0
        && (r.t0..r.t1).all(|t| {
            (r.h0..r.h1).all(|h| scaled_finite(r.q.add(t * row + h * hd), dv, T::SCALE))
        });
    // Blocks before the first row's window hold nothing any row sees.
    let first_block = first::<WINDOW>(s, r.t0) / bs;
    let mut b = first_block;
    if !WINDOW && piece == 0 && r.t1 - r.t0 == 1 && bs % 2 == 0 && hd % 8 == 0 {
        b = if scaled && (r.h1 - r.h0) * hd <= SCALED_QUERIES {
            key_streams::<T, true>(r, s, &ic, longest / bs, g0, g1, group)
        } else {
            key_streams::<T, false>(r, s, &ic, longest / bs, g0, g1, group)
        };
    }
    while b * bs < longest {
        p.each::<T, WINDOW>(&ic, r.k_base, b, |qs, count, j0, n, rows, raw| {
            let q = qs.map(|(t, h)| r.q.add(t * row + h * hd));
            let at = qs.map(|(t, h)| sc(t, h).add(b * bs + j0));
            match (count, raw) {
                (2, true) => scores_rows::<T, 2>(&ic, q, rows, at, n, hd, s.scale, scaled),
                (2, false) => scores_rows::<F32, 2>(&(), q, rows, at, n, hd, s.scale, false),
                (_, true) => {
                    scores_rows::<T, 1>(&ic, [q[0]], rows, [at[0]], n, hd, s.scale, scaled)
                }
                _ => scores_rows::<F32, 1>(&(), [q[0]], rows, [at[0]], n, hd, s.scale, false),
            }
        });
        b += 1;
    }
    for t in r.t0..r.t1 {
        let first = first::<WINDOW>(s, t);
        for h in r.h0..r.h1 {
            let seen = sc(t, h).add(first);
            softmax_row(seen, seen, s.visible(t) - first, c);
            let o = r.out.add(t * row + h * hd);
            for i in 0..hd {
                *o.add(i) = 0.0;
            }
        }
    }
    let mut b = first_block;
    while b * bs < longest {
        p.each::<T, WINDOW>(&ic, r.v_base, b, |qs, count, j0, n, rows, raw| {
            let p = qs.map(|(t, h)| sc(t, h).add(b * bs + j0) as *const f32);
            let o = qs.map(|(t, h)| r.out.add(t * row + h * hd));
            let (f32s, items) = (Contiguous::<F32>, Contiguous::<T>);
            match (count, raw) {
                (2, true) => accumulate::<_, 2>(&ic, p, items(rows, n, PhantomData), o, n, hd),
                (2, false) => accumulate::<_, 2>(&(), p, f32s(rows, n, PhantomData), o, n, hd),
                (_, true) => {
                    accumulate::<_, 1>(&ic, [p[0]], items(rows, n, PhantomData), [o[0]], n, hd)
                }
                _ => accumulate::<_, 1>(&(), [p[0]], f32s(rows, n, PhantomData), [o[0]], n, hd),
            }
        });
        b += 1;
    }
}

/// Blocks of keys one query row reads side by side in `key_streams`.
const KEY_STREAMS: usize = 4;

/// Query items `key_streams` holds scaled (a stack buffer): 32 heads of 128.
const SCALED_QUERIES: usize = 4096;

/// Scores of the one query row r.t0 against the keys of its first `full` blocks (all rows
/// visible), read as `KEY_STREAMS` runs of blocks side by side; returns the blocks done (the
/// rest, and a part-full last block, are the caller's). Each score takes the steps of
/// `key_scores`, so its bits are the same. The values of the same rows are touched on the way
/// (a load of each 64 bytes), so that the value pass, which must add them in order, finds them
/// in cache. A decode step between the weights of two layers finds its cache in memory:
/// there a single forward stream of keys waited on each load, and reading the values later
/// did the same (a random 110M-shape model, 512 positions, one thread: 1.12x a step, 1.13x
/// eight sequences' steps).
#[inline(always)]
unsafe fn key_streams<T: Item, const RAW: bool>(
    r: &PagedRows,
    s: &PagedShape,
    ic: &T::C,
    full: usize,
    g0: usize,
    g1: usize,
    group: usize,
) -> usize {
    let kv = &s.kv;
    let (hd, bs) = (kv.head_dim, kv.block_size);
    let per = full / KEY_STREAMS;
    let row = s.n_heads * hd;
    let query = |h: usize| r.q.add(r.t0 * row + h * hd);
    // With `RAW`, the rows' `SCALE` goes onto a copy of the queries, made once.
    let mut scaled = MaybeUninit::<[f32; SCALED_QUERIES]>::uninit();
    let scaled = scaled.as_mut_ptr() as *mut f32;
    if RAW {
        let by = f32x4_splat(T::SCALE);
        for h in r.h0..r.h1 {
            let (from, to) = (query(h), scaled.add((h - r.h0) * hd));
            let mut i = 0;
            while i < hd {
                storef(to.add(i), f32x4_mul(loadf(from.add(i)), by));
                i += 4;
            }
        }
    }
    for k in 0..per {
        let at = |i: usize| i * per + k;
        let block = |base: *const u8, i: usize| {
            base.add(*r.table.add(at(i)) as usize * kv.block_stride())
        };
        let keys: [*const u8; KEY_STREAMS] = core::array::from_fn(|i| block(r.k_base, i));
        let values: [*const u8; KEY_STREAMS] = core::array::from_fn(|i| block(r.v_base, i));
        for g in g0..g1 {
            let head = |b: *const u8| b.add(kv.head_start(g));
            let (keys, values) = (keys.map(head), values.map(head));
            for h in heads_of(g, group, r.h0, r.h1) {
                let q = if RAW {
                    scaled.add((h - r.h0) * hd) as *const f32
                } else {
                    query(h)
                };
                let sc = r.scores.add(h * s.kv_len);
                let outs = core::array::from_fn(|i| sc.add(at(i) * bs));
                stream_scores::<T, RAW>(ic, q, keys, values, outs, bs, hd, s.scale);
            }
        }
    }
    per * KEY_STREAMS
}

/// outs[i][0..len] = q . (row j of keys[i]) * scale, two rows of each run at a time (len even,
/// hd a multiple of 8); with `RAW`, the keys read by `load4_raw`, q already times their
/// `SCALE`. The same rows of `touch` are loaded once per 64 bytes.
#[inline(always)]
unsafe fn stream_scores<T: Item, const RAW: bool>(
    ic: &T::C,
    q: *const f32,
    keys: [*const u8; KEY_STREAMS],
    touch: [*const u8; KEY_STREAMS],
    outs: [*mut f32; KEY_STREAMS],
    len: usize,
    hd: usize,
    scale: f32,
) {
    let scale = f32x4_splat(scale);
    let stride = hd * T::BYTES;
    let mut touched = i32x4_splat(0);
    let mut j = 0;
    while j < len {
        for p in touch.map(|v| v.add(j * stride)) {
            let mut o = 0;
            while o < 2 * stride {
                touched = v128_or(touched, v128_load32_zero(p.add(o) as *const u32));
                o += 64;
            }
        }
        let mut a = [f32x4_splat(0.0); 2 * KEY_STREAMS];
        let mut i = 0;
        while i < hd {
            let qv = [loadf(q.add(i)), loadf(q.add(i + 4))];
            unrolled::<{ 2 * KEY_STREAMS }>(|x| {
                let p = keys[x / 2].add((j + x % 2) * stride);
                let kv = if RAW {
                    T::load8_raw(ic, p, i)
                } else {
                    T::load8(ic, p, i)
                };
                a[x] = madd(qv[0], kv[0], a[x]);
                a[x] = madd(qv[1], kv[1], a[x]);
            });
            i += 8;
        }
        for half in 0..KEY_STREAMS / 2 {
            let x = 4 * half;
            let sums = f32x4_mul(reduce4_f32(a[x], a[x + 1], a[x + 2], a[x + 3]), scale);
            v128_store64_lane::<0>(sums, outs[2 * half].add(j) as *mut u64);
            v128_store64_lane::<1>(sums, outs[2 * half + 1].add(j) as *mut u64);
        }
        j += 2;
    }
    core::hint::black_box(touched);
}

/// How `attend_paged` walks the rows of one block of a region.
struct Pieces<'a> {
    r: &'a PagedRows,
    s: &'a PagedShape,
    longest: usize,
    g0: usize,
    g1: usize,
    group: usize,
    piece: usize,
    converted: *mut f32,
}

impl Pieces<'_> {
    /// f(qs, count, j0, n, rows, raw) for every query row t and head h reading rows j0..j0 + n
    /// of block b (of kv head h / group), those of the block it sees: `rows` points at them as
    /// f32, or in place when `raw`. Two (t, h) that read the same rows come together in `qs`
    /// (`count` 2), so that each row read serves both; one comes alone as `qs[0]` (`count` 1).
    #[inline(always)]
    unsafe fn each<T: Item, const WINDOW: bool>(
        &self,
        ic: &T::C,
        base: *const u8,
        b: usize,
        mut f: impl FnMut([(usize, usize); 2], usize, usize, usize, *const u8, bool),
    ) {
        let (r, s) = (self.r, self.s);
        let (hd, bs) = (s.kv.head_dim, s.kv.block_size);
        let avail = rows_in(self.longest, b, bs);
        let step = if self.piece == 0 { avail } else { self.piece };
        let raw = self.piece == 0;
        let item = if raw { T::BYTES } else { 4 };
        let block = base.add(*r.table.add(b) as usize * s.kv.block_stride());
        for g in self.g0..self.g1 {
            let src = block.add(s.kv.head_start(g));
            let mut j0 = 0;
            while j0 < avail {
                let j1 = if avail - j0 < step { avail } else { j0 + step };
                let at = src.add(j0 * hd * T::BYTES);
                let rows = if raw {
                    at
                } else {
                    as_f32::<T>(ic, at, self.converted, j1 - j0, hd)
                };
                let from = |start: usize| rows.add((start - j0) * hd * item);
                // A (t, h) and its rows start..end, waiting for a second one reading the same.
                let mut held: Option<((usize, usize), usize, usize)> = None;
                for t in r.t0..r.t1 {
                    let end = rows_in(s.visible(t), b, bs);
                    // The row's window may start inside this piece, or after it.
                    let first = first::<WINDOW>(s, t);
                    let start = if first > b * bs + j0 { first - b * bs } else { j0 };
                    let end = if end < j1 { end } else { j1 };
                    if end <= start {
                        continue;
                    }
                    for h in heads_of(g, self.group, r.h0, r.h1) {
                        held = match held {
                            Some((th, a, e)) if a == start && e == end => {
                                f([th, (t, h)], 2, start, end - start, from(start), raw);
                                None
                            }
                            Some((th, a, e)) => {
                                f([th, th], 1, a, e - a, from(a), raw);
                                Some(((t, h), start, end))
                            }
                            None => Some(((t, h), start, end)),
                        };
                    }
                }
                if let Some((th, a, e)) = held {
                    f([th, th], 1, a, e - a, from(a), raw);
                }
                j0 = j1;
            }
        }
    }
}

/// The first position row t sees: 0 without a window (a constant, so that the causal code is
/// what it was before windows).
#[inline(always)]
fn first<const WINDOW: bool>(s: &PagedShape, t: usize) -> usize {
    if WINDOW {
        s.first(t)
    } else {
        0
    }
}

/// Of `len` positions, how many block `b` (of `bs`) holds.
#[inline(always)]
fn rows_in(len: usize, b: usize, bs: usize) -> usize {
    if len <= b * bs {
        0
    } else if len - b * bs < bs {
        len - b * bs
    } else {
        bs
    }
}

/// The query heads of kv head g within h0..h1.
#[inline(always)]
fn heads_of(g: usize, group: usize, h0: usize, h1: usize) -> core::ops::Range<usize> {
    let (a, b) = (g * group, (g + 1) * group);
    (if a > h0 { a } else { h0 })..(if b < h1 { b } else { h1 })
}

/// `rows` rows of `hd` items at p as f32: p itself for f32 items; f16 ones converted into
/// `buffer`, items below hd - hd % 4 by `load4`, the others by `value`, as the readers do.
#[inline(always)]
unsafe fn as_f32<T: Item>(
    ic: &T::C,
    p: *const u8,
    buffer: *mut f32,
    rows: usize,
    hd: usize,
) -> *const u8 {
    if T::BYTES == 4 {
        return p;
    }
    let dv = hd - hd % 4;
    for j in 0..rows {
        let (src, dst) = (p.add(j * hd * T::BYTES), buffer.add(j * hd));
        let mut i = 0;
        while i < dv {
            storef(dst.add(i), T::load4(ic, src, i));
            i += 4;
        }
        for i in dv..hd {
            *dst.add(i) = T::value(src, i);
        }
    }
    buffer as *const u8
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
    let scaled = R::Item::SCALE != 1.0 && scaled_finite(q, hd - hd % 4, R::Item::SCALE);
    let mut b = 0;
    while b * rows < len {
        let n = if len - b * rows < rows {
            len - b * rows
        } else {
            rows
        };
        let at = scores.add(b * rows);
        scores_rows::<R::Item, 1>(&ic, [q], k.block(b), [at], n, hd, scale, scaled);
        b += 1;
    }
    softmax_row(scores, scores, len, c);
    for i in 0..hd {
        *out.add(i) = 0.0;
    }
    accumulate::<R, 1>(&ic, [scores as *const f32], v, [out], len, hd);
}

/// An item type of a KV cache, read as f32 (with constants `C`, built once per call).
trait Item {
    const BYTES: usize;
    type C: Copy;
    fn consts() -> Self::C;
    /// Items i..i+4 of the row at p.
    unsafe fn load4(c: &Self::C, p: *const u8, i: usize) -> v128;
    /// What `load4_raw` leaves out of the items: a power of two, so moving it onto the other
    /// factor of a product leaves the product's bits as they were (while nothing overflows).
    const SCALE: f32;
    /// Items i..i+4 of the row at p divided by `SCALE`.
    unsafe fn load4_raw(c: &Self::C, p: *const u8, i: usize) -> v128;
    /// `load4_raw` of items i..i+4 and i+4..i+8, from one load where the items allow.
    unsafe fn load8_raw(c: &Self::C, p: *const u8, i: usize) -> [v128; 2];
    /// `load4` of items i..i+4 and i+4..i+8, likewise.
    unsafe fn load8(c: &Self::C, p: *const u8, i: usize) -> [v128; 2];
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
    const SCALE: f32 = 1.0;
    #[inline(always)]
    unsafe fn load4_raw(c: &(), p: *const u8, i: usize) -> v128 {
        Self::load4(c, p, i)
    }
    #[inline(always)]
    unsafe fn load8_raw(c: &(), p: *const u8, i: usize) -> [v128; 2] {
        [Self::load4(c, p, i), Self::load4(c, p, i + 4)]
    }
    #[inline(always)]
    unsafe fn load8(c: &(), p: *const u8, i: usize) -> [v128; 2] {
        Self::load8_raw(c, p, i)
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
    keep_top: v128,
    rebias: v128,
}

impl Item for F16 {
    const BYTES: usize = 2;
    type C = F16Consts;
    #[inline(always)]
    fn consts() -> F16Consts {
        core::hint::black_box(F16Consts {
            zero: u16x8_splat(0),
            sign_mag: u32x4_splat(F16_TOP_KEEP),
            keep_top: u16x8_splat((F16_TOP_KEEP >> 16) as u16),
            rebias: f32x4_splat(F16_EXP_REBIAS),
        })
    }
    /// `generic::f16::f16_to_f32_finite` on four halves: each half moves to the top of its
    /// u32 lane (`f16_top_scaled`), and 2^112 rebiases.
    #[inline(always)]
    unsafe fn load4(c: &F16Consts, p: *const u8, i: usize) -> v128 {
        f32x4_mul(Self::load4_raw(c, p, i), c.rebias)
    }
    const SCALE: f32 = F16_EXP_REBIAS;
    #[inline(always)]
    unsafe fn load4_raw(c: &F16Consts, p: *const u8, i: usize) -> v128 {
        let h = v128_load64_zero(p.add(2 * i) as *const u64);
        let top = i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(c.zero, h);
        f16_top_scaled(top, c.sign_mag)
    }
    /// The lanes of `load4_raw`, bit for bit, from one load of eight halves (every
    /// bounds-checked load in the hot loops costs three more instructions), shifted as 16-bit
    /// halves: each lane's top half is the half shifted right by 3 (sign, exponent, top of the
    /// mantissa, with `keep_top` dropping the sign's copies), its bottom half the mantissa's
    /// last three bits.
    #[inline(always)]
    unsafe fn load8_raw(c: &F16Consts, p: *const u8, i: usize) -> [v128; 2] {
        let h = v128_load(p.add(2 * i) as *const v128);
        let (top, bottom) = (v128_and(i16x8_shr(h, 3), c.keep_top), i16x8_shl(h, 13));
        [
            i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(bottom, top),
            i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(bottom, top),
        ]
    }
    #[inline(always)]
    unsafe fn load8(c: &F16Consts, p: *const u8, i: usize) -> [v128; 2] {
        Self::load8_raw(c, p, i).map(|v| f32x4_mul(v, c.rebias))
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

/// Scores of `len` consecutive key rows at kh against each of Q query rows: scs[q][j] =
/// qs[q] . k_j * scale, each dot product in the order `generic::matmul::dot_f32` adds it (each
/// step fused where `madd` fuses), whatever Q is: eight keys at a time for one query row, four
/// for two (each key read once for both), then four, then one. `scaled`: every query's items
/// times `T::SCALE` are finite (`scaled_finite`), so the keys' `SCALE` may move onto them.
#[inline(always)]
unsafe fn scores_rows<T: Item, const Q: usize>(
    ic: &T::C,
    qs: [*const f32; Q],
    kh: *const u8,
    scs: [*mut f32; Q],
    len: usize,
    hd: usize,
    scale: f32,
    scaled: bool,
) {
    if T::SCALE != 1.0 && scaled {
        scores_rows_with::<T, Q, true>(ic, qs, kh, scs, len, hd, scale);
    } else {
        scores_rows_with::<T, Q, false>(ic, qs, kh, scs, len, hd, scale);
    }
}

/// True when every q[0..n] * scale is finite (and so exact: `scale` is a power of two).
#[inline(always)]
unsafe fn scaled_finite(q: *const f32, n: usize, scale: f32) -> bool {
    let mut big = f32x4_splat(0.0);
    let mut i = 0;
    while i < n {
        big = f32x4_pmax(big, f32x4_abs(loadf(q.add(i))));
        i += 4;
    }
    let big = f32x4_pmax(big, i32x4_shuffle::<2, 3, 0, 1>(big, big));
    let big = f32x4_pmax(big, i32x4_shuffle::<1, 0, 3, 2>(big, big));
    f32x4_extract_lane::<0>(big) * scale < f32::INFINITY
}

/// `scores_rows`; with `RAW`, the keys read by `load4_raw` and their `SCALE` moved onto q.
#[inline(always)]
unsafe fn scores_rows_with<T: Item, const Q: usize, const RAW: bool>(
    ic: &T::C,
    qs: [*const f32; Q],
    kh: *const u8,
    scs: [*mut f32; Q],
    len: usize,
    hd: usize,
    scale: f32,
) {
    let qscale = f32x4_splat(T::SCALE);
    let qload = |q: *const f32, i: usize| {
        if RAW {
            f32x4_mul(loadf(q.add(i)), qscale)
        } else {
            loadf(q.add(i))
        }
    };
    let kload = |p: *const u8, i: usize| {
        if RAW {
            T::load4_raw(ic, p, i)
        } else {
            T::load4(ic, p, i)
        }
    };
    let dv = hd - hd % 4;
    let row = |j: usize| kh.add(j * hd * T::BYTES);
    let mut j = 0;
    // Eight accumulators at a time: with four, the adds into each one waited on each other.
    if Q == 1 {
        while j + 8 <= len {
            key_scores::<T, Q, 8>(&qload, &kload, qs, &row, scs, j, hd, scale);
            j += 8;
        }
    }
    while j + 4 <= len {
        key_scores::<T, Q, 4>(&qload, &kload, qs, &row, scs, j, hd, scale);
        j += 4;
    }
    while j < len {
        for (&q, &sc) in qs.iter().zip(scs.iter()) {
            let mut a = f32x4_splat(0.0);
            let mut i = 0;
            while i < dv {
                a = madd(qload(q, i), kload(row(j), i), a);
                i += 4;
            }
            let mut sum = hsum_f32(a);
            for i in dv..hd {
                sum += *q.add(i) * T::value(row(j), i);
            }
            *sc.add(j) = sum * scale;
        }
        j += 1;
    }
}

/// scs[q][j..j + N] (N a multiple of 4) = scores of keys j..j + N, read by `kload` against
/// each query row read by `qload`; items past hd - hd % 4 by `T::value`.
#[inline(always)]
unsafe fn key_scores<T: Item, const Q: usize, const N: usize>(
    qload: &impl Fn(*const f32, usize) -> v128,
    kload: &impl Fn(*const u8, usize) -> v128,
    qs: [*const f32; Q],
    row: &impl Fn(usize) -> *const u8,
    scs: [*mut f32; Q],
    j: usize,
    hd: usize,
    scale: f32,
) {
    let dv = hd - hd % 4;
    let mut a = [[f32x4_splat(0.0); N]; Q];
    let mut i = 0;
    while i < dv {
        let qv = qs.map(|q| qload(q, i));
        for r in 0..N {
            let kv = kload(row(j + r), i);
            for (aq, &qq) in a.iter_mut().zip(qv.iter()) {
                aq[r] = madd(qq, kv, aq[r]);
            }
        }
        i += 4;
    }
    for ((aq, &q), &sc) in a.iter().zip(qs.iter()).zip(scs.iter()) {
        for h in (0..N).step_by(4) {
            let mut sum = reduce4_f32(aq[h], aq[h + 1], aq[h + 2], aq[h + 3]);
            for i in dv..hd {
                let kv = f32x4(
                    T::value(row(j + h), i),
                    T::value(row(j + h + 1), i),
                    T::value(row(j + h + 2), i),
                    T::value(row(j + h + 3), i),
                );
                sum = f32x4_add(sum, f32x4_mul(kv, f32x4_splat(*q.add(i))));
            }
            storef(sc.add(j + h), f32x4_mul(sum, f32x4_splat(scale)));
        }
    }
}

/// outs[q] (hd) += sum_j ps[q][j] * V_j over the `len` rows of `v`, for each of Q query rows,
/// in increasing j for every element, each sum starting from the value out holds, whatever Q
/// is (each value row read once for all of them).
#[inline(always)]
unsafe fn accumulate<R: HeadRows, const Q: usize>(
    ic: &<R::Item as Item>::C,
    ps: [*const f32; Q],
    v: R,
    outs: [*mut f32; Q],
    len: usize,
    hd: usize,
) {
    let mut i = 0;
    // Eight accumulators at a time where they fit: with four, each one's adds waited on each
    // other.
    if Q == 1 {
        while i + 32 <= hd {
            accumulate_vectors::<R, Q, 8>(ic, ps, v, outs, len, hd, i);
            i += 32;
        }
    }
    while i + 16 <= hd {
        accumulate_vectors::<R, Q, 4>(ic, ps, v, outs, len, hd, i);
        i += 16;
    }
    while i + 4 <= hd {
        accumulate_vectors::<R, Q, 1>(ic, ps, v, outs, len, hd, i);
        i += 4;
    }
    while i < hd {
        for (&p, &out) in ps.iter().zip(outs.iter()) {
            let mut a = *out.add(i);
            for_rows(v, len, hd, |row, j| a += *p.add(j) * R::Item::value(row, i));
            *out.add(i) = a;
        }
        i += 1;
    }
}

/// `accumulate` of items i..i + 4N into each outs[q][i..i + 4N]: f16 items read without their
/// rebias, which goes onto p_j instead (the products keep their bits).
#[inline(always)]
unsafe fn accumulate_vectors<R: HeadRows, const Q: usize, const N: usize>(
    ic: &<R::Item as Item>::C,
    ps: [*const f32; Q],
    v: R,
    outs: [*mut f32; Q],
    len: usize,
    hd: usize,
    i: usize,
) {
    let mut a: [[v128; N]; Q] = outs.map(|o| core::array::from_fn(|c| loadf(o.add(i + 4 * c))));
    for_rows(v, len, hd, |row, j| {
        let pj = ps.map(|p| f32x4_splat(*p.add(j) * R::Item::SCALE));
        let mut c = 0;
        while c + 2 <= N {
            let vc = R::Item::load8_raw(ic, row, i + 4 * c);
            for (aq, &pq) in a.iter_mut().zip(pj.iter()) {
                aq[c] = madd(pq, vc[0], aq[c]);
                aq[c + 1] = madd(pq, vc[1], aq[c + 1]);
            }
            c += 2;
        }
        if c < N {
            let vc = R::Item::load4_raw(ic, row, i + 4 * c);
            for (aq, &pq) in a.iter_mut().zip(pj.iter()) {
                aq[c] = madd(pq, vc, aq[c]);
            }
        }
    });
    for (aq, &o) in a.iter().zip(outs.iter()) {
        for (c, ac) in aq.iter().enumerate() {
            storef(o.add(i + 4 * c), *ac);
        }
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
