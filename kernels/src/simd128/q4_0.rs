use super::{load, reduce4_i32, store_lanes, unrolled};
use crate::generic::f16::F16_EXP_REBIAS;
use crate::generic::q4_0::{q8_row_bytes, BLOCK_BYTES, QK, WIDE_SCALE, WORD_MAJOR};
use core::arch::wasm32::*;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
                let g0 = i16x8_shuffle::<0, 2, 4, 6, 8, 10, 12, 14>(a, bb);
                let g1 = i16x8_shuffle::<0, 2, 4, 6, 8, 10, 12, 14>(c, dd);
                let g2 = i16x8_shuffle::<1, 3, 5, 7, 9, 11, 13, 15>(a, bb);
                let g3 = i16x8_shuffle::<1, 3, 5, 7, 9, 11, 13, 15>(c, dd);
                v128_store(o, i16x8_shl(g0, 8));
                v128_store(o.add(1), i16x8_shl(g1, 4));
                v128_store(o.add(2), g2);
                v128_store(o.add(3), i16x8_shl(g3, 8));
            } else {
                let o = out.add(b * QK) as *mut v128;
                v128_store(o, i8x16_narrow_i16x8(a, bb));
                v128_store(o.add(1), i8x16_narrow_i16x8(c, dd));
            }
            let s = i32x4_add(sum, i32x4_shuffle::<2, 3, 0, 1>(sum, sum));
            let s = i32x4_extract_lane::<0>(s) + i32x4_extract_lane::<1>(s);
            let scale = if WIDE { WIDE_SCALE } else { 1 };
            dp.add(b).write_unaligned(d / scale as f32);
            bp.add(b).write_unaligned(-8 * scale * s);
        }
    }
}

struct Q8Row {
    qbytes: usize,
    nb: usize,
    xrb: usize,
    c: Consts,
}

/// Vector constants built once per call and hidden from LLVM, which would otherwise
/// rematerialize them with `v128.const` inside the loops (V8 does not hoist those).
#[derive(Clone, Copy)]
struct Consts {
    nibble: v128,
    nibble1: v128,
    nibble2: v128,
    sign: v128,
    mag: v128,
    rebias: v128,
}

impl Consts {
    #[inline(always)]
    fn new() -> Self {
        #[cfg(target_feature = "relaxed-simd")]
        let nibble = u8x16_splat(0x0f);
        #[cfg(not(target_feature = "relaxed-simd"))]
        let nibble = u16x8_splat(0x000f);
        core::hint::black_box(Consts {
            nibble,
            nibble1: u16x8_splat(0x00f0),
            nibble2: u16x8_splat(0x0f00),
            sign: u32x4_splat(0x8000),
            mag: u32x4_splat(0x7fff),
            rebias: f32x4_splat(F16_EXP_REBIAS),
        })
    }
}

/// Below this many tokens the tiles do not pay on the machines measured first (an AMD EPYC,
/// `bench:kernels`): the tokens run the one-token kernel, a few per pass over the rows8
/// groups with relaxed SIMD. Where those passes wait on memory, the tiles pay from fewer
/// tokens (`set_tile_from`).
const GEMM_MIN_TOKENS: usize = 8;

/// The fewest tokens the tiles take from now on (relaxed SIMD; 2..=`GEMM_MIN_TOKENS`).
static TILE_FROM: AtomicUsize = AtomicUsize::new(GEMM_MIN_TOKENS);

/// Products of `tokens` tokens and more run the tiles from now on (clamped to
/// 2..=`GEMM_MIN_TOKENS`; the simd128 build keeps `GEMM_MIN_TOKENS`). The same bits either
/// way; which is faster depends on the machine (measured by the caller).
pub fn set_tile_from(tokens: usize) {
    let tokens = tokens.clamp(2, GEMM_MIN_TOKENS);
    TILE_FROM.store(tokens, Ordering::Relaxed);
}

/// Runs of rows8 groups the one-token and few-token passes read side by side when
/// `set_weight_streams(STREAMS)` asked for them. Eight, not four: on a Xeon (Sapphire Rapids,
/// 2 vCPUs) where several streams pay, one token read its weights from memory 1.10-1.18x
/// faster (768 x 768 to 4096 x 4096) and two 1.02-1.05x; a 110M-shape decode ran 1.2-1.3x
/// faster at one thread and 1.1-1.2x at two, the 1.1B shape 1.04x at one. Sixteen read one
/// token a little faster still, but spilled two tokens' sums (0.3-0.9x).
pub const STREAMS: usize = 8;

static WEIGHT_STREAMS: AtomicUsize = AtomicUsize::new(1);

/// Weight streams of the one-token and few-token passes from now on: `STREAMS`, or 1 (any
/// other count). Outputs are the same bits either way; which is faster depends on the
/// machine's memory system (measured by the caller).
pub fn set_weight_streams(streams: usize) {
    let streams = if streams == STREAMS { STREAMS } else { 1 };
    WEIGHT_STREAMS.store(streams, Ordering::Relaxed);
}

/// How the passes split `groups` rows8 groups: `STREAMS` runs of `per` groups (per = 0 when
/// reading one stream), and the groups those runs cover; the rest follow as one stream.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn stream_runs(groups: usize) -> (usize, usize) {
    let per = if WEIGHT_STREAMS.load(Ordering::Relaxed) == STREAMS {
        groups / STREAMS
    } else {
        0
    };
    (per, STREAMS * per)
}

static I32_SUMS: AtomicBool = AtomicBool::new(false);

/// Whether the rows8 passes of one to four tokens and the prompt tiles sum their dot products
/// in i32 lanes (`block_sums_i32`) from now on, or in i16 lanes (`block_sums`). The same
/// integers either way, so the same bits; which is faster depends on the instructions the
/// engine has for them here (measured by the caller).
pub fn set_i32_sums(on: bool) {
    I32_SUMS.store(on, Ordering::Relaxed);
}

/// Tokens per pass of the tile kernels over a row range: eight, written out (`gemm_rows`),
/// ran prompts of 16-256 tokens 1.03-1.10x faster than sixteen in a loop (4096 x 4096, one
/// thread, i32 sums), whose sums V8 keeps in memory; longer tiles lose more to cache misses
/// on their activations than they save on unpacking.
const TOKEN_TILE: usize = 8;

/// W (n, k) Q4_0 @ xq (m, k) Q8_0 -> y (m, n), rows r0..r1 (r0 a multiple of 4, r1 of 8 or
/// n with `rows8`). One token: eight rows per pass over the weights; two to seven tokens
/// (relaxed SIMD, rows8): the same, up to four tokens per pass. From `GEMM_MIN_TOKENS` (or
/// `set_tile_from`) tokens on, tiles of 16 or 8 rows (relaxed SIMD) or four rows by
/// `TOKEN_TILE` tokens, each weight block unpacked once per tile. Every output is
/// bit-identical to its one-token result: the blocks' f32 terms are added in the same order
/// by every path.
/// `rows8`: W is in the layout of `generic::q4_0::interleave_rows8`.
pub unsafe fn matmul_q4_0_q8_0<const WIDE: bool>(
    w: *const u8,
    xq: *const u8,
    y: *mut f32,
    m: usize,
    n: usize,
    k: usize,
    r0: usize,
    r1: usize,
    rows8: bool,
) {
    let r1 = if r1 < n { r1 } else { n };
    let nb = k / QK;
    let g = Q8Row {
        qbytes: k * if WIDE { 2 } else { 1 },
        nb,
        xrb: q8_row_bytes::<WIDE>(k),
        c: Consts::new(),
    };
    let wm = Matrix {
        w,
        wrb: nb * BLOCK_BYTES,
        n8: if rows8 { n / 8 * 8 } else { 0 },
    };
    #[cfg(target_feature = "relaxed-simd")]
    let tile_from = TILE_FROM.load(Ordering::Relaxed);
    #[cfg(not(target_feature = "relaxed-simd"))]
    let tile_from = GEMM_MIN_TOKENS;
    if m < tile_from {
        #[cfg(target_feature = "relaxed-simd")]
        if m > 1 {
            matvec_tokens(&wm, xq, &g, y, m, n, r0, r1);
            return;
        }
        for t in 0..m {
            matvec(&wm, xq.add(t * g.xrb), &g, y.add(t * n), r0, r1);
        }
        return;
    }
    let mut t0 = 0;
    while t0 < m {
        let mt = if m - t0 < TOKEN_TILE {
            m - t0
        } else {
            TOKEN_TILE
        };
        let (xt, yt) = (xq.add(t0 * g.xrb), y.add(t0 * n));
        let mut r = r0;
        while r < r1 {
            #[cfg(target_feature = "relaxed-simd")]
            if r % 16 == 0 && r + 16 <= r1 && r + 16 <= wm.n8 {
                let w = [0, 4, 8, 12].map(|i| wm.packed4(r + i));
                gemm_tile(w, xt, &g, yt, mt, n, r);
                r += 16;
                continue;
            }
            #[cfg(target_feature = "relaxed-simd")]
            if r + 8 <= r1 && (r % 8 == 0 || r >= wm.n8) {
                if r < wm.n8 {
                    gemm_tile([wm.packed4(r), wm.packed4(r + 4)], xt, &g, yt, mt, n, r);
                } else {
                    gemm_tile([wm.ggml4(r, r1), wm.ggml4(r + 4, r1)], xt, &g, yt, mt, n, r);
                }
                r += 8;
                continue;
            }
            let rows = if r1 - r < 4 { r1 - r } else { 4 };
            if r < wm.n8 {
                tiles4(wm.packed4(r), xt, &g, yt, mt, n, r, rows);
            } else {
                tiles4(wm.ggml4(r, r1), xt, &g, yt, mt, n, r, rows);
            }
            r += 4;
        }
        t0 += mt;
    }
}

/// A Q4_0 weight in memory: rows of `wrb` bytes, the first `n8` in rows8 groups.
struct Matrix {
    w: *const u8,
    wrb: usize,
    n8: usize,
}

impl Matrix {
    /// Rows r..r+4 of a rows8 group (r < n8, r a multiple of 4).
    #[inline(always)]
    unsafe fn packed4(&self, r: usize) -> Packed4 {
        Packed4::new(self.w.add(r / 8 * 8 * self.wrb), r % 8)
    }

    /// GGML rows r..r+4, the ones at or past r1 repeating row r1 - 1.
    #[inline(always)]
    unsafe fn ggml4(&self, r: usize, r1: usize) -> Ggml4 {
        let last = r1 - 1;
        Ggml4([0, 1, 2, 3].map(|i| {
            self.w
                .add((if r + i < last { r + i } else { last }) * self.wrb)
        }))
    }
}

/// One token xr times rows r0..r1 -> y[r0..r1], eight rows per pass where it can.
unsafe fn matvec(wm: &Matrix, xr: *const u8, g: &Q8Row, y: *mut f32, r0: usize, r1: usize) {
    let mut r = r0;
    while r < r1 {
        if r < wm.n8 {
            let group = wm.w.add(r / 8 * 8 * wm.wrb);
            #[cfg(target_feature = "relaxed-simd")]
            if r % 8 == 0 && r + 8 <= r1 {
                let end = if r1 < wm.n8 { r1 / 8 * 8 } else { wm.n8 };
                matvec_rows8(group, xr, y.add(r), (end - r) / 8, g.nb);
                r = end;
                continue;
            }
            if r % 8 == 0 && r + 8 <= r1 {
                tile1x8(
                    Packed4::new(group, 0),
                    Packed4::new(group, 4),
                    xr,
                    g,
                    y.add(r),
                );
                r += 8;
            } else {
                let rows = if r1 - r < 4 { r1 - r } else { 4 };
                tile1(wm.packed4(r), xr, g, y.add(r), rows);
                r += 4;
            }
            continue;
        }
        if r + 8 <= r1 {
            tile1x8(wm.ggml4(r, r1), wm.ggml4(r + 4, r1), xr, g, y.add(r));
            r += 8;
            continue;
        }
        let rows = if r1 - r < 4 { r1 - r } else { 4 };
        tile1(wm.ggml4(r, r1), xr, g, y.add(r), rows);
        r += 4;
    }
}

/// Four weight rows, read block by block.
trait Rows4: Copy {
    /// The four block scales of block b as f32.
    unsafe fn scales(self, b: usize, c: &Consts) -> v128;
    /// The four rows' 16 code bytes of block b, a vector per row.
    unsafe fn rows(self, b: usize) -> [v128; 4];
    /// The same codes word-major: vector j holds word j (codes 4j..4j+4) of rows 0..4.
    #[cfg(target_feature = "relaxed-simd")]
    unsafe fn words(self, b: usize) -> [v128; 4];
}

/// Four GGML rows: block b of a row at b * 18.
#[derive(Clone, Copy)]
struct Ggml4([*const u8; 4]);

impl Rows4 for Ggml4 {
    #[inline(always)]
    unsafe fn scales(self, b: usize, c: &Consts) -> v128 {
        let bo = b * BLOCK_BYTES;
        let h = v128_load16_lane::<0>(i32x4_splat(0), self.0[0].add(bo) as *const u16);
        let h = v128_load16_lane::<2>(h, self.0[1].add(bo) as *const u16);
        let h = v128_load16_lane::<4>(h, self.0[2].add(bo) as *const u16);
        let h = v128_load16_lane::<6>(h, self.0[3].add(bo) as *const u16);
        f16_scales(h, c)
    }
    #[inline(always)]
    unsafe fn rows(self, b: usize) -> [v128; 4] {
        self.0.map(|row| load(row.add(b * BLOCK_BYTES + 2)))
    }
    #[cfg(target_feature = "relaxed-simd")]
    #[inline(always)]
    unsafe fn words(self, b: usize) -> [v128; 4] {
        transpose_u32(self.rows(b))
    }
}

/// Rows i0..i0+4 of a rows8 group: block b holds the 8 scales, then the 64 code bytes of
/// rows 0..4 and of rows 4..8: word-major in the relaxed-SIMD build, row by row otherwise
/// (`generic::q4_0::WORD_MAJOR`).
#[derive(Clone, Copy)]
struct Packed4 {
    d: *const u8,
    qs: *const u8,
}

impl Packed4 {
    #[inline(always)]
    unsafe fn new(group: *const u8, i0: usize) -> Self {
        Packed4 {
            d: group.add(2 * i0),
            qs: group.add(16 + 16 * i0),
        }
    }
}

impl Rows4 for Packed4 {
    #[inline(always)]
    unsafe fn scales(self, b: usize, c: &Consts) -> v128 {
        let h = v128_load64_zero(self.d.add(b * 8 * BLOCK_BYTES) as *const u64);
        f16_scales(u32x4_extend_low_u16x8(h), c)
    }
    #[inline(always)]
    unsafe fn rows(self, b: usize) -> [v128; 4] {
        let v = self.vectors(b);
        if WORD_MAJOR {
            transpose_u32(v)
        } else {
            v
        }
    }
    #[cfg(target_feature = "relaxed-simd")]
    #[inline(always)]
    unsafe fn words(self, b: usize) -> [v128; 4] {
        let v = self.vectors(b);
        if WORD_MAJOR {
            v
        } else {
            transpose_u32(v)
        }
    }
}

impl Packed4 {
    /// The four 16-byte vectors of the four rows' codes of block b, as stored.
    #[inline(always)]
    unsafe fn vectors(self, b: usize) -> [v128; 4] {
        [0, 1, 2, 3].map(|j| load(self.qs.add(b * 8 * BLOCK_BYTES + 16 * j)))
    }
}

/// Four vectors of four u32 lanes transposed: lane i of vector j becomes lane j of vector i
/// (rows of code words to words of rows, and back).
#[inline(always)]
fn transpose_u32([r0, r1, r2, r3]: [v128; 4]) -> [v128; 4] {
    let a = i32x4_shuffle::<0, 4, 1, 5>(r0, r1);
    let b = i32x4_shuffle::<0, 4, 1, 5>(r2, r3);
    let c = i32x4_shuffle::<2, 6, 3, 7>(r0, r1);
    let d = i32x4_shuffle::<2, 6, 3, 7>(r2, r3);
    [
        i64x2_shuffle::<0, 2>(a, b),
        i64x2_shuffle::<1, 3>(a, b),
        i64x2_shuffle::<0, 2>(c, d),
        i64x2_shuffle::<1, 3>(c, d),
    ]
}

/// Four f16 scales in u32 lanes to f32 (`generic::f16::f16_to_f32_finite`).
#[inline(always)]
fn f16_scales(h: v128, c: &Consts) -> v128 {
    let sign = i32x4_shl(v128_and(h, c.sign), 16);
    let mag = i32x4_shl(v128_and(h, c.mag), 13);
    v128_or(f32x4_mul(mag, c.rebias), sign)
}

#[inline(always)]
unsafe fn unpack4<W: Rows4>(w: W, b: usize, c: &Consts) -> Unpacked {
    w.rows(b).map(|q| unpack(q, c))
}

/// Four weight rows times every token.
#[inline(always)]
unsafe fn tiles4<W: Rows4>(
    w: W,
    xq: *const u8,
    g: &Q8Row,
    y: *mut f32,
    m: usize,
    n: usize,
    r: usize,
    rows: usize,
) {
    let mut t = 0;
    while t + 4 <= m {
        tile4(w, xq, g, y, n, t, r, rows);
        t += 4;
    }
    while t < m {
        tile1(w, xq.add(t * g.xrb), g, y.add(t * n + r), rows);
        t += 1;
    }
}

/// acc + (isum of the 4 rows with token row `xr`, block b) * (dw * da)
#[inline(always)]
unsafe fn token_update(
    acc: v128,
    u: &Unpacked,
    xr: *const u8,
    b: usize,
    g: &Q8Row,
    dw: v128,
) -> v128 {
    let a = xr.add(b * QK * QW);
    let bias = xr.add(g.qbytes + 4 * g.nb + 4 * b);
    let isum = i32x4_add(
        reduce4_i32(
            row_dot(&u[0], a, bias),
            row_dot(&u[1], a, bias),
            row_dot(&u[2], a, bias),
            row_dot(&u[3], a, bias),
        ),
        reduced_bias(bias),
    );
    let da = (xr.add(g.qbytes + 4 * b) as *const f32).read_unaligned();
    f32x4_add(
        acc,
        f32x4_mul(f32x4_convert_i32x4(isum), f32x4_mul(dw, f32x4_splat(da))),
    )
}

/// The -8 offset of every nibble, as -8 * sum(q) of the block, once per row.
#[inline(always)]
unsafe fn reduced_bias(bias: *const u8) -> v128 {
    i32x4_splat((bias as *const i32).read_unaligned())
}

#[inline(always)]
unsafe fn tile1<W: Rows4>(w: W, xr: *const u8, g: &Q8Row, y: *mut f32, rows: usize) {
    let mut acc = f32x4_splat(0.0);
    for b in 0..g.nb {
        let dw = w.scales(b, &g.c);
        let u = unpack4(w, b, &g.c);
        acc = token_update(acc, &u, xr, b, g, dw);
    }
    store_lanes(y, acc, rows);
}

/// One token, eight rows: two four-row groups sharing the activation loads.
#[inline(always)]
unsafe fn tile1x8<W: Rows4>(lo: W, hi: W, xr: *const u8, g: &Q8Row, y: *mut f32) {
    let mut acc0 = f32x4_splat(0.0);
    let mut acc1 = f32x4_splat(0.0);
    for b in 0..g.nb {
        let dw0 = lo.scales(b, &g.c);
        let u0 = unpack4(lo, b, &g.c);
        acc0 = token_update(acc0, &u0, xr, b, g, dw0);
        let dw1 = hi.scales(b, &g.c);
        let u1 = unpack4(hi, b, &g.c);
        acc1 = token_update(acc1, &u1, xr, b, g, dw1);
    }
    store_lanes(y, acc0, 4);
    store_lanes(y.add(4), acc1, 4);
}

#[inline(always)]
unsafe fn tile4<W: Rows4>(
    w: W,
    xq: *const u8,
    g: &Q8Row,
    y: *mut f32,
    n: usize,
    t0: usize,
    r: usize,
    rows: usize,
) {
    let x0 = xq.add(t0 * g.xrb);
    let (x1, x2, x3) = (x0.add(g.xrb), x0.add(2 * g.xrb), x0.add(3 * g.xrb));
    let (mut a0, mut a1, mut a2, mut a3) = (
        f32x4_splat(0.0),
        f32x4_splat(0.0),
        f32x4_splat(0.0),
        f32x4_splat(0.0),
    );
    for b in 0..g.nb {
        let dw = w.scales(b, &g.c);
        let u = unpack4(w, b, &g.c);
        a0 = token_update(a0, &u, x0, b, g, dw);
        a1 = token_update(a1, &u, x1, b, g, dw);
        a2 = token_update(a2, &u, x2, b, g, dw);
        a3 = token_update(a3, &u, x3, b, g, dw);
    }
    let yr = y.add(t0 * n + r);
    store_lanes(yr, a0, rows);
    store_lanes(yr.add(n), a1, rows);
    store_lanes(yr.add(2 * n), a2, rows);
    store_lanes(yr.add(3 * n), a3, rows);
}

/// `gemm_rows` summing dot products as `set_i32_sums` last chose.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn gemm_tile<W: Rows4, const G: usize>(
    w: [W; G],
    xq: *const u8,
    g: &Q8Row,
    y: *mut f32,
    m: usize,
    n: usize,
    r: usize,
) {
    match (I32_SUMS.load(Ordering::Relaxed), m) {
        (true, 8) => gemm_rows::<W, G, true, 8>(w, xq, g, y, m, n, r),
        (true, 4) => gemm_rows::<W, G, true, 4>(w, xq, g, y, m, n, r),
        (true, _) => gemm_rows::<W, G, true, 0>(w, xq, g, y, m, n, r),
        (false, 8) => gemm_rows::<W, G, false, 8>(w, xq, g, y, m, n, r),
        (false, 4) => gemm_rows::<W, G, false, 4>(w, xq, g, y, m, n, r),
        (false, _) => gemm_rows::<W, G, false, 0>(w, xq, g, y, m, n, r),
    }
}

/// Rows r..r+4G (G groups of four in `w`) times tokens 0..m (m <= TOKEN_TILE), each weight
/// block unpacked once for all of them: the code words of each four rows, word-major (lane i
/// of word j holds row i's codes 4j..4j+4), meet a token's four activation bytes, splatted
/// (`token_words`), in one dot product (8 per four rows, block and token). A token's splats
/// serve all G groups: 16 rows ran 1.03-1.09x faster per token than 8 (same bits); 32 rows
/// ran 1.00-1.02x faster than 16 with splat loads, 0.72x with shuffled splats (8 tokens, i32
/// sums).
/// The f32 sums take the blocks in order, each as `acc + isum * (dw * da)`, so every output
/// equals its one-token result bit for bit. They stay in a local array: kept in y they
/// would be stored and loaded a row of y apart, and rows 4 KiB apart stall each other.
/// M > 0 (m = M) writes the tokens out (`unrolled`), so that the sums are locals, not linear
/// memory: eight tokens (eight sequences decoding together) ran 1.03-1.05x faster, four
/// 1.06-1.08x with i32 sums and 1.03-1.10x with i16 sums (4096 x 4096 from memory; i16 sums in
/// cache 1.17x); sixteen gained nothing, as V8 spills that many sums to its stack either way.
#[cfg(target_feature = "relaxed-simd")]
#[inline(never)]
unsafe fn gemm_rows<W: Rows4, const G: usize, const I32: bool, const M: usize>(
    w: [W; G],
    xq: *const u8,
    g: &Q8Row,
    y: *mut f32,
    m: usize,
    n: usize,
    r: usize,
) {
    let mut acc = [[f32x4_splat(0.0); G]; TOKEN_TILE];
    for b in 0..g.nb {
        let dw = w.map(|w| w.scales(b, &g.c));
        let codes = w.map(|w| unpack_words(w.words(b), g.c.nibble));
        let token = |t: usize, a: &mut [v128; G]| {
            let x = xq.add(b * QK + t * g.xrb);
            let d = xq.add(g.qbytes + 4 * b + t * g.xrb);
            let (xl, xh) = token_words::<I32>(x);
            let da = v128_load32_splat(d as *const u32);
            let bias = v128_load32_splat(d.add(4 * g.nb) as *const u32);
            for (h, c) in codes.iter().enumerate() {
                let isum = if I32 {
                    block_sums_i32(&xl, &xh, c, bias)
                } else {
                    block_sums(&xl, &xh, c, bias)
                };
                a[h] = f32x4_add(a[h], f32x4_mul(isum, f32x4_mul(dw[h], da)));
            }
        };
        if M > 0 {
            unrolled::<M>(|t| token(t, &mut acc[t]));
        } else {
            for (t, a) in acc.iter_mut().enumerate().take(m) {
                token(t, a);
            }
        }
    }
    for (t, a) in acc.iter().enumerate().take(m) {
        for (h, a) in a.iter().enumerate() {
            v128_store(y.add(t * n + r + 4 * h) as *mut v128, *a);
        }
    }
}

/// Nibbles as u16 lanes, masked in place: q & 0xf, q & 0xf0, q & 0xf00, q >> 12 pair with
/// the activation groups 256 a[2i], 16 a[2i+16], a[2i+1], 256 a[2i+17] (see `generic::q4_0`).
#[cfg(not(target_feature = "relaxed-simd"))]
type Unpacked = [[v128; 4]; 4];
#[cfg(not(target_feature = "relaxed-simd"))]
const QW: usize = 2;

#[cfg(not(target_feature = "relaxed-simd"))]
#[inline(always)]
fn unpack(q: v128, c: &Consts) -> [v128; 4] {
    [
        v128_and(q, c.nibble),
        v128_and(q, c.nibble1),
        v128_and(q, c.nibble2),
        u16x8_shr(q, 12),
    ]
}

#[cfg(not(target_feature = "relaxed-simd"))]
#[inline(always)]
unsafe fn row_dot(n: &[v128; 4], a: *const u8, _bias: *const u8) -> v128 {
    let d01 = i32x4_add(
        i32x4_dot_i16x8(n[0], load(a)),
        i32x4_dot_i16x8(n[1], load(a.add(16))),
    );
    let d23 = i32x4_add(
        i32x4_dot_i16x8(n[2], load(a.add(32))),
        i32x4_dot_i16x8(n[3], load(a.add(48))),
    );
    i32x4_add(d01, d23)
}

/// Low nibbles pair with a[0..16], high nibbles with a[16..32]; the nibble (0..15) is the
/// 7-bit operand, so the relaxed dot product is exact on every engine. Each i16 lane sums
/// four products of at most 15 * 127, far from overflow.
#[cfg(target_feature = "relaxed-simd")]
type Unpacked = [[v128; 2]; 4];
#[cfg(target_feature = "relaxed-simd")]
const QW: usize = 1;

#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn unpack(q: v128, c: &Consts) -> [v128; 2] {
    [v128_and(q, c.nibble), v128_and(u16x8_shr(q, 4), c.nibble)]
}

#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn row_dot(n: &[v128; 2], a: *const u8, _bias: *const u8) -> v128 {
    let lo = i16x8_relaxed_dot_i8x16_i7x16(load(a), n[0]);
    let hi = i16x8_relaxed_dot_i8x16_i7x16(load(a.add(16)), n[1]);
    i32x4_extadd_pairwise_i16x8(i16x8_add(lo, hi))
}

/// One token times `groups` rows8 groups of 8 rows from `w` on (nb blocks per row)
/// (`matvec_rows8_pass`). Not inlined, so that the loop's constants are the only ones holding
/// registers.
#[cfg(target_feature = "relaxed-simd")]
#[inline(never)]
unsafe fn matvec_rows8(w: *const u8, xr: *const u8, y: *mut f32, groups: usize, nb: usize) {
    matvec_rows8_pass::<1>(w, groups, xr, 0, y, 0, nb);
}

/// Tokens 0..m (m < `GEMM_MIN_TOKENS`) times rows r0..r1: the aligned rows8 groups up to
/// four tokens per pass (`matvec_rows8_pass`), a single last token by `matvec_rows8`, the
/// rest token by token. Each output is what the one-token `matvec` gives it, bit for bit.
/// Four tokens' sums over eight weight streams do not fit in V8's vector registers, yet one
/// pass reads each weight once where passes of two read it twice: with four per pass, three
/// and four tokens ran 1.17-1.20x and 1.10-1.18x faster from memory (768 x 768 to 4096 x
/// 4096, one thread) and 1.24x and 1.19x in cache (4096 x 4096); decode steps of three, four
/// and six sequences of a 110M-shape model 1.18x, 1.16x and 1.06x at one thread.
#[cfg(target_feature = "relaxed-simd")]
unsafe fn matvec_tokens(
    wm: &Matrix,
    xq: *const u8,
    g: &Q8Row,
    y: *mut f32,
    m: usize,
    n: usize,
    r0: usize,
    r1: usize,
) {
    let mut r = r0;
    if r % 8 == 0 && r < wm.n8 && r + 8 <= r1 {
        let end = if r1 < wm.n8 { r1 / 8 * 8 } else { wm.n8 };
        let (group, groups) = (wm.w.add(r / 8 * 8 * wm.wrb), (end - r) / 8);
        let mut t = 0;
        while t < m {
            let (x, yt) = (xq.add(t * g.xrb), y.add(t * n + r));
            t += match m - t {
                1 => {
                    matvec_rows8(group, x, yt, groups, g.nb);
                    1
                }
                2 => {
                    matvec_rows8_pass::<2>(group, groups, x, g.xrb, yt, n, g.nb);
                    2
                }
                3 => {
                    matvec_rows8_pass::<3>(group, groups, x, g.xrb, yt, n, g.nb);
                    3
                }
                _ => {
                    matvec_rows8_pass::<4>(group, groups, x, g.xrb, yt, n, g.nb);
                    4
                }
            };
        }
        r = end;
    }
    if r < r1 {
        for t in 0..m {
            matvec(wm, xq.add(t * g.xrb), g, y.add(t * n), r, r1);
        }
    }
}

/// T tokens (at x, `xrb` bytes apart; outputs `n` floats apart) times `groups` rows8 groups
/// from `w` on, in one pass (`matvec_rows8_tokens`): as `set_weight_streams` asked, in
/// `STREAMS` runs read side by side and the groups left over in one (`stream_runs`), the dot
/// products summed in i32 lanes as `set_i32_sums` last chose.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn matvec_rows8_pass<const T: usize>(
    w: *const u8,
    groups: usize,
    x: *const u8,
    xrb: usize,
    y: *mut f32,
    n: usize,
    nb: usize,
) {
    let (per, done) = stream_runs(groups);
    let (rest, yr) = (w.add(done * nb * 8 * BLOCK_BYTES), y.add(8 * done));
    macro_rules! runs {
        ($i32:literal) => {{
            if per > 0 {
                matvec_rows8_tokens::<T, STREAMS, $i32>(w, x, xrb, y, n, per, nb);
            }
            if done < groups {
                matvec_rows8_tokens::<T, 1, $i32>(rest, x, xrb, yr, n, groups - done, nb);
            }
        }};
    }
    if I32_SUMS.load(Ordering::Relaxed) {
        runs!(true)
    } else {
        runs!(false)
    }
}

/// T tokens (rows `xrb` bytes apart, outputs `n` floats apart) times S runs of `per` rows8
/// groups each (run s from group s * per on), block by block of every run in turn, bit for
/// bit what `tile1x8` gives each token: each of the block's eight activation words of a
/// token, splatted (`token_words`), meets the same word of four rows in one dot product, so
/// the 16 dot products of a block sum in i16 lanes (or i32 lanes with `I32`) that are already
/// the rows' (a row's i16 lane sums 16 products of at most 15 * 128, below 2^15), with no
/// reduction across lanes; the 8 scales come from one load, and each block's codes are
/// unpacked once for all T tokens. Inlined: as a function of its own, once the 16-row prompt
/// tile joined the module, V8's tier-up compiled it slower than an eager compile
/// (`--no-liftoff`) does, the same bytes: two sequences decoding together at two threads ran
/// 0.80-0.86x of before and four 0.76x; inlined, 1.04x and 0.99-1.06x. One token runs it too,
/// as fast as a loop of its own did (4096 x 4096 from memory, one stream and four, and a 110M
/// decode step). Its runs and tokens are written out (`unrolled`): as loops, they kept their
/// sums and weight pointers in linear memory, and one token ran 1.12-1.17x slower (2048 x 768
/// from memory), two 1.20x (4096 x 4096), a 110M decode step at one thread 1.17-1.19x.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn matvec_rows8_tokens<const T: usize, const S: usize, const I32: bool>(
    w: *const u8,
    xq: *const u8,
    xrb: usize,
    y: *mut f32,
    n: usize,
    per: usize,
    nb: usize,
) {
    let c = Rows8Consts::new();
    let group_bytes = nb * 8 * BLOCK_BYTES;
    for gi in 0..per {
        let mut acc = [[[f32x4_splat(0.0); 2]; T]; S];
        let mut ws: [*const u8; S] =
            core::array::from_fn(|s| w.add((s * per + gi) * group_bytes));
        for b in 0..nb {
            unrolled::<S>(|s| {
                let (w, acc) = (&mut ws[s], &mut acc[s]);
                let dw = c.scales(load(*w));
                let codes = [0, 1].map(|half| unpack_words(c.words(*w, half), c.nibble));
                unrolled::<T>(|t| {
                    let a = &mut acc[t];
                    let x = xq.add(t * xrb);
                    let (xl, xh) = token_words::<I32>(x.add(b * QK));
                    let d = x.add(QK * nb + 4 * b);
                    let da = v128_load32_splat(d as *const u32);
                    let bias = v128_load32_splat(d.add(4 * nb) as *const u32);
                    for (half, codes) in codes.iter().enumerate() {
                        let isum = if I32 {
                            block_sums_i32(&xl, &xh, codes, bias)
                        } else {
                            block_sums(&xl, &xh, codes, bias)
                        };
                        a[half] = f32x4_add(a[half], f32x4_mul(isum, f32x4_mul(dw[half], da)));
                    }
                });
                *w = w.add(8 * BLOCK_BYTES);
            });
        }
        for (s, acc) in acc.iter().enumerate() {
            for (t, a) in acc.iter().enumerate() {
                let yg = y.add(t * n + 8 * (s * per + gi));
                store_lanes(yg, a[0], 4);
                store_lanes(yg.add(4), a[1], 4);
            }
        }
    }
}

/// Constants of the rows8 kernels, built in each kernel (not inlined) so that they are the
/// only ones holding registers, and hidden from LLVM (see `Consts`).
#[cfg(target_feature = "relaxed-simd")]
#[derive(Clone, Copy)]
struct Rows8Consts {
    nibble: v128,
    sign_mag: v128,
    rebias: v128,
}

#[cfg(target_feature = "relaxed-simd")]
impl Rows8Consts {
    #[inline(always)]
    fn new() -> Self {
        core::hint::black_box(Rows8Consts {
            nibble: u8x16_splat(0x0f),
            sign_mag: u32x4_splat(super::F16_TOP_KEEP),
            rebias: f32x4_splat(F16_EXP_REBIAS),
        })
    }

    /// The 8 f16 scales at the start of a rows8 block as f32, rows 0..4 and rows 4..8: each
    /// half moves to the top of a u32 lane (`f16_top_scaled`; `f16_scales` otherwise).
    #[inline(always)]
    fn scales(&self, h: v128) -> [v128; 2] {
        let z = i32x4_splat(0);
        [
            i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(z, h),
            i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(z, h),
        ]
        .map(|t| f32x4_mul(super::f16_top_scaled(t, self.sign_mag), self.rebias))
    }

    /// The four code vectors of rows 4 * half.. of the rows8 block at w.
    #[inline(always)]
    unsafe fn words(&self, w: *const u8, half: usize) -> [v128; 4] {
        [0, 1, 2, 3].map(|j| load(w.add(16 + 64 * half + 16 * j)))
    }
}

/// Four rows' word-major codes unpacked: the low nibbles (values 0..16 of the block) and the
/// high ones (16..32), vector j holding word j of every row.
#[cfg(target_feature = "relaxed-simd")]
type Words = ([v128; 4], [v128; 4]);

#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn unpack_words(q: [v128; 4], nibble: v128) -> Words {
    (
        q.map(|q| v128_and(q, nibble)),
        q.map(|q| v128_and(u16x8_shr(q, 4), nibble)),
    )
}

/// A token's eight activation words of a block at x, each splatted: values 0..16, then
/// 16..32. Deno runs WebAssembly without V8's trap handler, so every load from linear memory
/// carries a bounds check of three instructions. With i32 sums (one `vpdpbusd` a dot
/// product) two 16-byte loads shuffled into the eight splats ran 1.05-1.09x faster than eight
/// splat loads at 8 tokens and 1.02-1.08x at 2-6 (4096 x 4096 in cache, one thread). With i16
/// sums, whose dot products take more of the vector ALU the shuffles need, they gained nothing
/// (0.96-1.04x).
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn token_words<const SHUFFLED: bool>(x: *const u8) -> ([v128; 4], [v128; 4]) {
    if SHUFFLED {
        let splats = |v: v128| {
            [
                i32x4_shuffle::<0, 0, 0, 0>(v, v),
                i32x4_shuffle::<1, 1, 1, 1>(v, v),
                i32x4_shuffle::<2, 2, 2, 2>(v, v),
                i32x4_shuffle::<3, 3, 3, 3>(v, v),
            ]
        };
        return (splats(load(x)), splats(load(x.add(16))));
    }
    let splat = |at: usize| v128_load32_splat(x.add(at) as *const u32);
    ([0, 4, 8, 12].map(splat), [16, 20, 24, 28].map(splat))
}

/// Four rows' integer sums of one block with one token, as f32 (lane i: row i): the token's
/// splatted words `xl` and `xh` meet the rows' `words` in 16 dot products summed in i16 (a
/// lane sums 16 products of at most 15 * 128, below 2^15), plus the token's `bias` (-8 times
/// the sum of its block). Exact, so every path's sums are the same integers.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn block_sums(xl: &[v128; 4], xh: &[v128; 4], (lo, hi): &Words, bias: v128) -> v128 {
    let dot = |j: usize| {
        i16x8_add(
            i16x8_relaxed_dot_i8x16_i7x16(xl[j], lo[j]),
            i16x8_relaxed_dot_i8x16_i7x16(xh[j], hi[j]),
        )
    };
    let s = i16x8_add(i16x8_add(dot(0), dot(1)), i16x8_add(dot(2), dot(3)));
    f32x4_convert_i32x4(i32x4_add(i32x4_extadd_pairwise_i16x8(s), bias))
}

/// `block_sums` by `i32x4.relaxed_dot_i8x16_i7x16_add`, the same integers: one instruction a
/// dot product where the CPU has AVX-VNNI (V8 emits `vpdpbusd`), three elsewhere. Two chains
/// of four, so that each waits on half as many.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn block_sums_i32(xl: &[v128; 4], xh: &[v128; 4], (lo, hi): &Words, bias: v128) -> v128 {
    let (mut s0, mut s1) = (bias, i32x4_splat(0));
    for j in 0..4 {
        s0 = i32x4_relaxed_dot_i8x16_i7x16_add(xl[j], lo[j], s0);
        s1 = i32x4_relaxed_dot_i8x16_i7x16_add(xh[j], hi[j], s1);
    }
    f32x4_convert_i32x4(i32x4_add(s0, s1))
}
