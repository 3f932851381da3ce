//! Rill compute kernels: `extern "C"` exports over offsets into the module's memory.
//! Every kernel `foo` has a scalar twin `foo_generic` with the same signature.
//! Matmuls take a row range `r0..r1` of W so threads can split the rows.
#![cfg_attr(not(test), no_std)]
#![allow(clippy::missing_safety_doc, clippy::too_many_arguments)]

pub mod generic;
#[cfg(target_arch = "wasm32")]
pub mod simd128;

use core::slice::{from_raw_parts as view, from_raw_parts_mut as view_mut};
use generic::attention::AttentionShape;
use generic::paged_kv::{PagedLayout, PagedShape, PAGED_ROWS};
use generic::q4_0::{q8_row_bytes as row_bytes, BLOCK_BYTES, QK, WORD_MAJOR};

/// Quantized activations are i8 for the relaxed dot product, permuted i16 otherwise.
#[cfg(target_feature = "relaxed-simd")]
const WIDE: bool = false;
#[cfg(not(target_feature = "relaxed-simd"))]
const WIDE: bool = true;

#[cfg(all(not(test), target_arch = "wasm32"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// 1 for the relaxed-SIMD build, 0 for plain simd128.
#[no_mangle]
pub extern "C" fn kernels_relaxed() -> u32 {
    (!WIDE) as u32
}

/// Bytes of one quantized activation row of length k (k a multiple of 32).
#[no_mangle]
pub extern "C" fn q8_0_row_bytes(k: usize) -> usize {
    row_bytes::<WIDE>(k)
}

/// Query rows `attention_paged` computes together: its scores hold this many rows at most.
#[no_mangle]
pub extern "C" fn attention_paged_rows() -> usize {
    PAGED_ROWS
}

// How the Q4_0 products run, chosen by timing on the machine (`kernels/q4_tuning.ts`); the
// outputs are the same bits under every setting. The simd128 build ignores them.

/// Weight streams the Q4_0 passes of one to seven tokens read side by side over rows8
/// weights: `q4_0_streams_max()` or 1.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn set_q4_0_streams(streams: usize) {
    simd128::q4_0::set_weight_streams(streams);
}

/// The streams `set_q4_0_streams` can turn on: 1 in the simd128 build, which reads one.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn q4_0_streams_max() -> usize {
    if cfg!(target_feature = "relaxed-simd") {
        simd128::q4_0::STREAMS
    } else {
        1
    }
}

/// Whether the Q4_0 rows8 products (passes and prompt tiles) sum their dot products in i32 lanes
/// (`i32x4.relaxed_dot_i8x16_i7x16_add`, one instruction with AVX-VNNI) rather than i16 ones.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn set_q4_0_i32_sums(on: u32) {
    simd128::q4_0::set_i32_sums(on != 0);
}

/// Q4_0 products of this many tokens and more (2 to 8) run the prompt tiles rather than
/// passes of one to four tokens.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn set_q4_0_tile_from(tokens: usize) {
    simd128::q4_0::set_tile_from(tokens);
}

/// Exports the kernel `$name` (the SIMD code on wasm32, its twin elsewhere) and its scalar
/// twin `$twin`, both with the one C signature written here.
macro_rules! kernel {
    (
        $(#[$doc:meta])*
        fn $name:ident / $twin:ident($($arg:ident: $ty:ty),* $(,)?)
        simd $simd:block
        scalar $scalar:block
    ) => {
        $(#[$doc])*
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "wasm32")]
            $simd
            #[cfg(not(target_arch = "wasm32"))]
            $twin($($arg),*);
        }

        #[no_mangle]
        pub unsafe extern "C" fn $twin($($arg: $ty),*) $scalar
    };
}

kernel! {
    // x (m, k) f32 -> xq (m, q8_0_row_bytes(k))
    fn quantize_q8_0 / quantize_q8_0_generic(x: *const f32, xq: *mut u8, m: usize, k: usize)
    simd {
        simd128::q4_0::quantize_q8_0::<WIDE>(x, xq, m, k);
    }
    scalar {
        let xs = view(x, m * k);
        let qs = view_mut(xq, m * row_bytes::<WIDE>(k));
        generic::q4_0::quantize_q8_0::<WIDE>(xs, qs, m, k);
    }
}

kernel! {
    // W (n, k) Q4_0 @ xq (m, k) Q8_0 -> y (m, n), rows r0..r1 (r0 % 4 == 0);
    // rows8 != 0: W was rewritten by interleave_q4_0_rows8
    fn matmul_q4_0_q8_0 / matmul_q4_0_q8_0_generic(
        w: *const u8,
        xq: *const u8,
        y: *mut f32,
        m: usize,
        n: usize,
        k: usize,
        r0: usize,
        r1: usize,
        rows8: u32,
    )
    simd {
        simd128::q4_0::matmul_q4_0_q8_0::<WIDE>(w, xq, y, m, n, k, r0, r1, rows8 != 0);
    }
    scalar {
        let ws = view(w, n * (k / QK) * BLOCK_BYTES);
        let xs = view(xq, m * row_bytes::<WIDE>(k));
        let ys = view_mut(y, m * n);
        let rows8 = rows8 != 0;
        generic::q4_0::matmul_q4_0_q8_0::<WIDE, WORD_MAJOR>(ws, xs, ys, m, n, k, r0, r1, rows8);
    }
}

// W (n, k) Q4_0 in GGML rows -> the rows8 layout, in place; tmp holds 8 rows of W
#[no_mangle]
pub unsafe extern "C" fn interleave_q4_0_rows8(w: *mut u8, tmp: *mut u8, n: usize, k: usize) {
    let wrb = (k / QK) * BLOCK_BYTES;
    generic::q4_0::interleave_rows8::<WORD_MAJOR>(
        view_mut(w, n * wrb),
        view_mut(tmp, 8 * wrb),
        n,
        k,
    );
}

// Row r of W (n, k) Q4_0 in the rows8 layout -> out, its k / 32 blocks in GGML order
#[no_mangle]
pub unsafe extern "C" fn q4_0_rows8_row(w: *const u8, out: *mut u8, n: usize, k: usize, r: usize) {
    let wrb = (k / QK) * BLOCK_BYTES;
    generic::q4_0::rows8_row::<WORD_MAJOR>(view(w, n * wrb), view_mut(out, wrb), n, k, r);
}

kernel! {
    // W (n, k) f32 @ x (m, k) -> y (m, n), rows r0..r1
    fn matmul_f32_f32 / matmul_f32_f32_generic(
        w: *const f32,
        x: *const f32,
        y: *mut f32,
        m: usize,
        n: usize,
        k: usize,
        r0: usize,
        r1: usize,
    )
    simd {
        simd128::matmul::matmul_f32_f32(w, x, y, m, n, k, r0, r1);
    }
    scalar {
        let (ws, xs, ys) = (view(w, n * k), view(x, m * k), view_mut(y, m * n));
        generic::matmul::matmul_f32_f32(ws, xs, ys, m, n, k, r0, r1);
    }
}

kernel! {
    // W (n, k) f16 @ x (m, k) f32 -> y (m, n), rows r0..r1
    fn matmul_f16_f32 / matmul_f16_f32_generic(
        w: *const u16,
        x: *const f32,
        y: *mut f32,
        m: usize,
        n: usize,
        k: usize,
        r0: usize,
        r1: usize,
    )
    simd {
        simd128::matmul::matmul_f16_f32(w, x, y, m, n, k, r0, r1);
    }
    scalar {
        let (ws, xs, ys) = (view(w, n * k), view(x, m * k), view_mut(y, m * n));
        generic::matmul::matmul_f16_f32(ws, xs, ys, m, n, k, r0, r1);
    }
}

kernel! {
    // x (m, d), w (d,) or null -> y (m, d); y may be x
    fn rms_norm_f32 / rms_norm_f32_generic(
        x: *const f32,
        w: *const f32,
        y: *mut f32,
        m: usize,
        d: usize,
        eps: f32,
    )
    simd {
        simd128::elementwise::rms_norm_f32(x, w, y, m, d, eps);
    }
    scalar {
        let ws = if w.is_null() { None } else { Some(view(w, d)) };
        generic::norm::rms_norm_f32(view(x, m * d), ws, view_mut(y, m * d), m, d, eps);
    }
}

kernel! {
    // x (m, n_heads, head_dim), cos/sin (m, head_dim) -> y like x; y may be x
    fn rope_rotate_half_f32 / rope_rotate_half_f32_generic(
        x: *const f32,
        cos: *const f32,
        sin: *const f32,
        y: *mut f32,
        m: usize,
        n_heads: usize,
        head_dim: usize,
    )
    simd {
        simd128::elementwise::rope_rotate_half_f32(x, cos, sin, y, m, n_heads, head_dim);
    }
    scalar {
        let len = m * n_heads * head_dim;
        let (c, s) = (view(cos, m * head_dim), view(sin, m * head_dim));
        generic::activation::rope_rotate_half_f32(
            view(x, len),
            c,
            s,
            view_mut(y, len),
            m,
            n_heads,
            head_dim,
        );
    }
}

kernel! {
    // a, b (len) -> y = a + b; y may be a or b
    fn add_f32 / add_f32_generic(a: *const f32, b: *const f32, y: *mut f32, len: usize)
    simd {
        simd128::elementwise::add_f32(a, b, y, len);
    }
    scalar {
        generic::activation::add_f32(view(a, len), view(b, len), view_mut(y, len), len);
    }
}

kernel! {
    // a, b (len) -> y = silu(a) * b; y may be a or b
    fn silu_gate_f32 / silu_gate_f32_generic(a: *const f32, b: *const f32, y: *mut f32, len: usize)
    simd {
        simd128::elementwise::silu_gate_f32(a, b, y, len);
    }
    scalar {
        generic::activation::silu_gate_f32(view(a, len), view(b, len), view_mut(y, len), len);
    }
}

kernel! {
    // x (n) -> w (n) = e^((x - max) * scale), 0 where NaN; the f64 sum of w at `total`
    fn weigh_logits / weigh_logits_generic(
        x: *const f32,
        w: *mut f32,
        n: usize,
        max: f32,
        scale: f32,
        total: *mut f64,
    )
    simd {
        *total = simd128::elementwise::weigh_logits(x, w, n, max, scale);
    }
    scalar {
        *total = generic::activation::weigh_logits(view(x, n), view_mut(w, n), max, scale);
    }
}

kernel! {
    // x (m, n) -> y (m, n); y may be x
    fn softmax_f32 / softmax_f32_generic(x: *const f32, y: *mut f32, m: usize, n: usize)
    simd {
        simd128::elementwise::softmax_f32(x, y, m, n);
    }
    scalar {
        for t in 0..m {
            let out = view_mut(y.add(t * n), n);
            if x != y as *const f32 {
                out.copy_from_slice(view(x.add(t * n), n));
            }
            generic::activation::softmax_in_place(out);
        }
    }
}

kernel! {
    // q (m, n_heads, head_dim), k/v cache (n_kv_heads, capacity, head_dim) -> out like q,
    // heads h0..h1; scores holds kv_len floats
    fn attention_f32 / attention_f32_generic(
        q: *const f32,
        k_cache: *const f32,
        v_cache: *const f32,
        out: *mut f32,
        scores: *mut f32,
        m: usize,
        n_heads: usize,
        n_kv_heads: usize,
        head_dim: usize,
        capacity: usize,
        kv_len: usize,
        q_pos0: usize,
        scale: f32,
        h0: usize,
        h1: usize,
    )
    simd {
        let s = AttentionShape {
            m,
            n_heads,
            n_kv_heads,
            head_dim,
            capacity,
            kv_len,
            q_pos0,
            scale,
        };
        simd128::attention::attention_f32(q, k_cache, v_cache, out, scores, &s, h0, h1);
    }
    scalar {
        let s = AttentionShape {
            m,
            n_heads,
            n_kv_heads,
            head_dim,
            capacity,
            kv_len,
            q_pos0,
            scale,
        };
        let ql = s.m * s.n_heads * s.head_dim;
        let cl = s.n_kv_heads * s.capacity * s.head_dim;
        generic::attention::attention_f32(
            view(q, ql),
            view(k_cache, cl),
            view(v_cache, cl),
            view_mut(out, ql),
            view_mut(scores, s.kv_len),
            &s,
            h0,
            h1,
        );
    }
}

kernel! {
    // q (m, n_heads, head_dim) over the paged K and V regions at k_base and v_base, block
    // table `table` (i32) -> out like q, heads h0..h1; scores holds
    // min(m, attention_paged_rows()) * n_heads * kv_len floats;
    // f16 != 0: items are f16, read as `generic::f16::f16_to_f32_finite` (else f32);
    // run_heads, run_stride: see `generic::paged_kv::PagedLayout`; window > 0: a row sees
    // its last `window` positions only (a sliding window)
    fn attention_paged / attention_paged_generic(
        q: *const f32,
        out: *mut f32,
        k_base: *const u8,
        v_base: *const u8,
        table: *const i32,
        scores: *mut f32,
        m: usize,
        n_heads: usize,
        n_kv_heads: usize,
        head_dim: usize,
        block_size: usize,
        kv_len: usize,
        q_pos0: usize,
        scale: f32,
        f16: u32,
        run_heads: usize,
        run_stride: usize,
        window: usize,
        h0: usize,
        h1: usize,
    )
    simd {
        let f16 = f16 != 0;
        let kv = PagedLayout { n_kv_heads, head_dim, block_size, f16, run_heads, run_stride };
        let s = PagedShape { m, n_heads, kv, kv_len, q_pos0, scale, window };
        simd128::attention::attention_paged(q, out, k_base, v_base, table, scores, &s, h0, h1);
    }
    scalar {
        let f16 = f16 != 0;
        let kv = PagedLayout { n_kv_heads, head_dim, block_size, f16, run_heads, run_stride };
        let s = PagedShape { m, n_heads, kv, kv_len, q_pos0, scale, window };
        let ql = m * n_heads * head_dim;
        let blocks = kv_len.div_ceil(block_size.max(1));
        let table = view(table, blocks);
        let (k, v) = (region(k_base, table, &kv), region(v_base, table, &kv));
        generic::paged_kv::attention_paged(
            view(q, ql),
            view_mut(out, ql),
            k,
            v,
            table,
            view_mut(scores, n_heads * kv_len),
            &s,
            h0,
            h1,
        );
    }
}

kernel! {
    // src f32, item (g, s, i) at g * head_stride + s * row_stride + i (g < n_kv_heads,
    // s < count, i < head_dim) -> positions pos0..pos0+count of the paged region at base,
    // block table `table`; f16 != 0: converted to f16, rounded to nearest even;
    // run_heads, run_stride: see `generic::paged_kv::PagedLayout`
    fn store_kv_paged / store_kv_paged_generic(
        src: *const f32,
        head_stride: usize,
        row_stride: usize,
        base: *mut u8,
        table: *const i32,
        block_size: usize,
        f16: u32,
        n_kv_heads: usize,
        head_dim: usize,
        pos0: usize,
        count: usize,
        run_heads: usize,
        run_stride: usize,
    )
    simd {
        let f16 = f16 != 0;
        let kv = PagedLayout { n_kv_heads, head_dim, block_size, f16, run_heads, run_stride };
        simd128::paged_kv::store_kv_paged(src, head_stride, row_stride, base, table, &kv, pos0, count);
    }
    scalar {
        if count == 0 || n_kv_heads == 0 {
            return;
        }
        let f16 = f16 != 0;
        let kv = PagedLayout { n_kv_heads, head_dim, block_size, f16, run_heads, run_stride };
        let table = view(table, (pos0 + count).div_ceil(block_size.max(1)));
        let src_len = (n_kv_heads - 1) * head_stride + (count - 1) * row_stride + head_dim;
        let len = region(base, &table[pos0 / block_size.max(1)..], &kv).len();
        generic::paged_kv::store_kv_paged(
            view(src, src_len),
            head_stride,
            row_stride,
            view_mut(base, len),
            table,
            &kv,
            pos0,
            count,
        );
    }
}

/// The paged region at `base` up to the end of the highest block in `table`.
unsafe fn region<'a>(base: *const u8, table: &[i32], kv: &PagedLayout) -> &'a [u8] {
    let blocks = table.iter().map(|&b| b as usize + 1).max().unwrap_or(0);
    view(base, kv.extent(blocks))
}

/// Sum of `bytes` bytes from `p` as u32 words (the memory-read baseline); bytes % 64 == 0.
#[no_mangle]
pub unsafe extern "C" fn read_sum_u32(p: *const u8, bytes: usize) -> u32 {
    #[cfg(target_arch = "wasm32")]
    return simd128::elementwise::read_sum_u32(p, bytes);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut s = 0u32;
        for i in 0..bytes / 4 {
            s = s.wrapping_add((p.add(4 * i) as *const u32).read_unaligned());
        }
        s
    }
}

/// The dot-product roofline of this build (see `simd128::elementwise::dot_peak_i8`): 192
/// products per 32 bytes and round with relaxed SIMD, 96 without. Returns a checksum (the
/// first u16 lane of the sums on wasm32).
#[no_mangle]
pub unsafe extern "C" fn dot_peak_i8(p: *const u8, bytes: usize, rounds: usize) -> u32 {
    #[cfg(target_arch = "wasm32")]
    return simd128::elementwise::dot_peak_i8(p, bytes, rounds);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut s = 0u32;
        for _ in 0..rounds {
            for i in 0..bytes {
                s = s.wrapping_add(*p.add(i) as u32);
            }
        }
        s
    }
}
