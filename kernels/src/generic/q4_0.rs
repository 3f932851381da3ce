//! Q4_0 weights (GGML block layout) times activations quantized per 32-block to Q8_0.
//!
//! Quantized activations of one token row of length k (nb = k / 32 blocks):
//! `qs` (k bytes of i8, or 2k bytes of i16 when `WIDE`), then `d: [f32; nb]`,
//! then `bias: [i32; nb]` holding -8 * sum(q) so the nibble offset leaves the inner loop.
//! `WIDE` stores each block's 32 values as i16 in the order the u16-lane kernel reads
//! them: a[2i], a[2i+16], a[2i+1], a[2i+17] for i in 0..8, as four groups of eight,
//! scaled by 256, 16, 1, 256. The kernel masks the weight bytes as u16 lanes without
//! shifting (q & 0xf, q & 0xf0, q & 0xf00, q >> 12: nibble times 1, 16, 256, 1), so every
//! product carries 256; `d` holds d / 256 and `bias` -8 * 256 * sum(q) to match.

use super::f16::f16_to_f32_finite;
use super::round_even;

pub const QK: usize = 32;

#[repr(C)]
pub struct BlockQ4_0 {
    pub d: [u8; 2],
    pub qs: [u8; QK / 2],
}

const _: () = assert!(core::mem::size_of::<BlockQ4_0>() == 18);

pub const BLOCK_BYTES: usize = core::mem::size_of::<BlockQ4_0>();

/// True when a rows8 block stores its codes word-major (the relaxed-SIMD build, whose
/// kernels splat activation words), false when row by row.
pub const WORD_MAJOR: bool = cfg!(target_feature = "relaxed-simd");

/// Where block `b` of row `r` lies in W (n, k): the byte offset of its f16 scale, and its
/// 16 code bytes. GGML rows lie one after the other. With `rows8`, each group of eight rows
/// is stored block by block, each block as the 8 rows' scales (16 bytes) then their codes
/// (128 bytes), so one token streams the weights in order and the scales load as one
/// vector. The codes lie row by row, or with `WORD_MAJOR` as two 64-byte halves of four
/// rows, each half word-major (bytes 4j..4j+4 of its four rows, then the next word), so one
/// 16-byte load holds the same word of four rows, which a token's splatted word meets in one
/// dot product. Rows past n / 8 * 8 stay as they were; all layouts take the same bytes,
/// groups keep their place.
#[inline(always)]
pub fn block_parts<const WORDS: bool>(
    r: usize,
    b: usize,
    n: usize,
    nb: usize,
    rows8: bool,
) -> (usize, Codes) {
    let wrb = nb * BLOCK_BYTES;
    if rows8 && r < n / 8 * 8 {
        let (base, i) = (r / 8 * 8 * wrb + b * 8 * BLOCK_BYTES, r % 8);
        let codes = if WORDS {
            Codes {
                at: base + 16 + 64 * (i / 4) + 4 * (i % 4),
                word_stride: 16,
            }
        } else {
            Codes {
                at: base + 16 + 16 * i,
                word_stride: 4,
            }
        };
        (base + 2 * i, codes)
    } else {
        let o = r * wrb + b * BLOCK_BYTES;
        (
            o,
            Codes {
                at: o + 2,
                word_stride: 4,
            },
        )
    }
}

/// The 16 code bytes of one row's block: four 4-byte words `word_stride` bytes apart.
#[derive(Clone, Copy)]
pub struct Codes {
    at: usize,
    word_stride: usize,
}

impl Codes {
    /// Byte offset of code byte `j` (0..16): values j and j + 16 of the block.
    #[inline(always)]
    pub fn byte(self, j: usize) -> usize {
        self.at + (j / 4) * self.word_stride + j % 4
    }
}

/// Rewrites W (n, k) from GGML rows to the `rows8` layout (word-major with `WORDS`) in place;
/// `tmp` holds 8 rows.
pub fn interleave_rows8<const WORDS: bool>(w: &mut [u8], tmp: &mut [u8], n: usize, k: usize) {
    let nb = k / QK;
    let wrb = nb * BLOCK_BYTES;
    for g in 0..n / 8 {
        let group = &mut w[g * 8 * wrb..(g + 1) * 8 * wrb];
        tmp[..8 * wrb].copy_from_slice(group);
        for i in 0..8 {
            for b in 0..nb {
                let from = i * wrb + b * BLOCK_BYTES;
                let (d, codes) = block_parts::<WORDS>(i, b, 8, nb, true);
                group[d..d + 2].copy_from_slice(&tmp[from..from + 2]);
                for j in 0..QK / 2 {
                    group[codes.byte(j)] = tmp[from + 2 + j];
                }
            }
        }
    }
}

/// Row `r` of W (n, k) in the `rows8` layout (word-major with `WORDS`) into `out` as GGML
/// blocks (k / 32 of them): what the row held before `interleave_rows8`.
pub fn rows8_row<const WORDS: bool>(w: &[u8], out: &mut [u8], n: usize, k: usize, r: usize) {
    let nb = k / QK;
    for (b, block) in out[..nb * BLOCK_BYTES].chunks_exact_mut(BLOCK_BYTES).enumerate() {
        let (d, codes) = block_parts::<WORDS>(r, b, n, nb, true);
        block[..2].copy_from_slice(&w[d..d + 2]);
        for j in 0..QK / 2 {
            block[2 + j] = w[codes.byte(j)];
        }
    }
}

/// Bytes of one quantized activation row of length `k`.
pub const fn q8_row_bytes<const WIDE: bool>(k: usize) -> usize {
    let nb = k / QK;
    k * if WIDE { 2 } else { 1 } + 8 * nb
}

/// Integer factor of the wide activations per group, and of the masked nibbles.
pub const WIDE_ACT: [i32; 4] = [256, 16, 1, 256];
pub const WIDE_NIB: [i32; 4] = [1, 16, 256, 1];
pub const WIDE_SCALE: i32 = 256;

/// Position of value `j` (0..32) of a block inside the wide i16 order.
#[inline(always)]
pub const fn wide_slot(j: usize) -> usize {
    let (half, jj) = if j < 16 { (0, j) } else { (1, j - 16) };
    let i = jj / 2;
    let odd = jj % 2;
    (2 * odd + half) * 8 + i
}

/// x (m, k) f32 -> xq (m, q8_row_bytes(k)).
pub fn quantize_q8_0<const WIDE: bool>(x: &[f32], xq: &mut [u8], m: usize, k: usize) {
    let nb = k / QK;
    let rb = q8_row_bytes::<WIDE>(k);
    let qbytes = k * if WIDE { 2 } else { 1 };
    for t in 0..m {
        let row = &x[t * k..t * k + k];
        let out = &mut xq[t * rb..t * rb + rb];
        for b in 0..nb {
            let blk = &row[b * QK..b * QK + QK];
            let mut amax = 0.0f32;
            for &v in blk {
                let a = f32::from_bits(v.to_bits() & 0x7fff_ffff);
                amax = if a > amax { a } else { amax };
            }
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let scale = if WIDE { WIDE_SCALE } else { 1 };
            let mut sum = 0i32;
            for (j, &v) in blk.iter().enumerate() {
                let q = round_even(v * id) as i32;
                sum += q;
                if WIDE {
                    let p = qbytes_offset_wide(b, j);
                    let v = q * WIDE_ACT[wide_slot(j) / 8];
                    out[p..p + 2].copy_from_slice(&(v as i16).to_le_bytes());
                } else {
                    out[b * QK + j] = q as i8 as u8;
                }
            }
            let dp = qbytes + 4 * b;
            out[dp..dp + 4].copy_from_slice(&(d / scale as f32).to_le_bytes());
            let bp = qbytes + 4 * nb + 4 * b;
            out[bp..bp + 4].copy_from_slice(&(-8 * scale * sum).to_le_bytes());
        }
    }
}

#[inline(always)]
fn qbytes_offset_wide(b: usize, j: usize) -> usize {
    (b * QK + wide_slot(j)) * 2
}

#[inline(always)]
fn q8_value<const WIDE: bool>(row: &[u8], b: usize, j: usize) -> i32 {
    if WIDE {
        let p = qbytes_offset_wide(b, j);
        i16::from_le_bytes([row[p], row[p + 1]]) as i32
    } else {
        row[b * QK + j] as i8 as i32
    }
}

#[inline(always)]
fn nib_factor<const WIDE: bool>(j: usize) -> i32 {
    if WIDE {
        WIDE_NIB[wide_slot(j) / 8]
    } else {
        1
    }
}

#[inline(always)]
fn read_f32(s: &[u8], p: usize) -> f32 {
    f32::from_le_bytes([s[p], s[p + 1], s[p + 2], s[p + 3]])
}

#[inline(always)]
fn read_i32(s: &[u8], p: usize) -> i32 {
    i32::from_le_bytes([s[p], s[p + 1], s[p + 2], s[p + 3]])
}

/// W (n, k) Q4_0 @ xq (m, k) Q8_0 -> y (m, n), rows `r0..r1` of W only; `WORDS`: rows8 codes
/// word-major.
#[allow(clippy::too_many_arguments)]
pub fn matmul_q4_0_q8_0<const WIDE: bool, const WORDS: bool>(
    w: &[u8],
    xq: &[u8],
    y: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    r0: usize,
    r1: usize,
    rows8: bool,
) {
    let nb = k / QK;
    let xrb = q8_row_bytes::<WIDE>(k);
    let qbytes = k * if WIDE { 2 } else { 1 };
    for r in r0..r1.min(n) {
        for t in 0..m {
            let xrow = &xq[t * xrb..t * xrb + xrb];
            let mut acc = 0.0f32;
            for b in 0..nb {
                let (d, codes) = block_parts::<WORDS>(r, b, n, nb, rows8);
                let dw = f16_to_f32_finite(u16::from_le_bytes([w[d], w[d + 1]]));
                let mut isum = read_i32(xrow, qbytes + 4 * nb + 4 * b);
                for j in 0..QK / 2 {
                    let byte = w[codes.byte(j)] as i32;
                    isum += (byte & 15) * nib_factor::<WIDE>(j) * q8_value::<WIDE>(xrow, b, j);
                    isum += (byte >> 4)
                        * nib_factor::<WIDE>(j + 16)
                        * q8_value::<WIDE>(xrow, b, j + 16);
                }
                let scale = dw * read_f32(xrow, qbytes + 4 * b);
                acc += isum as f32 * scale;
            }
            y[t * n + r] = acc;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::generic::f16::f16_to_f32;
    use std::vec;
    use std::vec::Vec;

    /// Activation quantization error dominates: relative to the row norm product.
    const Q8_ERROR_BUDGET: f64 = 0.01;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn random_q4(n: usize, k: usize, seed: &mut u64) -> Vec<u8> {
        let mut w = vec![0u8; n * k / QK * BLOCK_BYTES];
        for blk in w.chunks_mut(BLOCK_BYTES) {
            let d = 0.01 + 0.02 * lcg(seed).abs();
            let h = half_bits(d);
            blk[0..2].copy_from_slice(&h.to_le_bytes());
            for b in &mut blk[2..] {
                *b = ((lcg(seed) + 1.0) * 127.9) as u8;
            }
        }
        w
    }

    fn half_bits(v: f32) -> u16 {
        let bits = v.to_bits();
        let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
        ((bits >> 16) & 0x8000) as u16 | ((exp as u16) << 10) | ((bits >> 13) & 0x3ff) as u16
    }

    fn dequant(w: &[u8], n: usize, k: usize) -> Vec<f64> {
        let mut out = vec![0.0f64; n * k];
        for (bi, blk) in w.chunks(BLOCK_BYTES).enumerate() {
            let d = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]])) as f64;
            for j in 0..16 {
                out[bi * QK + j] = ((blk[2 + j] & 15) as f64 - 8.0) * d;
                out[bi * QK + j + 16] = ((blk[2 + j] >> 4) as f64 - 8.0) * d;
            }
        }
        out
    }

    fn check<const WIDE: bool>() {
        let (m, n, k) = (3, 5, 96);
        let mut seed = 7u64;
        let w = random_q4(n, k, &mut seed);
        let x: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
        let mut xq = vec![0u8; m * q8_row_bytes::<WIDE>(k)];
        quantize_q8_0::<WIDE>(&x, &mut xq, m, k);
        let mut y = vec![0.0f32; m * n];
        matmul_q4_0_q8_0::<WIDE, WORD_MAJOR>(&w, &xq, &mut y, m, n, k, 0, n, false);
        let wf = dequant(&w, n, k);
        for t in 0..m {
            for r in 0..n {
                let mut exact = 0.0f64;
                let mut norm = 0.0f64;
                let mut wn = 0.0f64;
                for j in 0..k {
                    exact += wf[r * k + j] * x[t * k + j] as f64;
                    norm += (x[t * k + j] as f64).powi(2);
                    wn += wf[r * k + j].powi(2);
                }
                let err = (y[t * n + r] as f64 - exact).abs() / (norm.sqrt() * wn.sqrt());
                assert!(
                    err < Q8_ERROR_BUDGET,
                    "row {r} token {t}: {} vs {exact}",
                    y[t * n + r]
                );
            }
        }
    }

    #[test]
    fn matmul_q4_0_q8_0_matches_f64_reference_narrow() {
        check::<false>();
    }

    #[test]
    fn matmul_q4_0_q8_0_matches_f64_reference_wide() {
        check::<true>();
    }

    #[test]
    fn wide_and_narrow_layouts_give_identical_results() {
        let (m, n, k) = (2, 4, 64);
        let mut seed = 3u64;
        let w = random_q4(n, k, &mut seed);
        let x: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
        let mut a = vec![0u8; m * q8_row_bytes::<false>(k)];
        let mut b = vec![0u8; m * q8_row_bytes::<true>(k)];
        quantize_q8_0::<false>(&x, &mut a, m, k);
        quantize_q8_0::<true>(&x, &mut b, m, k);
        let mut ya = vec![0.0f32; m * n];
        let mut yb = vec![0.0f32; m * n];
        matmul_q4_0_q8_0::<false, WORD_MAJOR>(&w, &a, &mut ya, m, n, k, 0, n, false);
        matmul_q4_0_q8_0::<true, WORD_MAJOR>(&w, &b, &mut yb, m, n, k, 0, n, false);
        assert_eq!(ya, yb);
    }

    fn interleave_keeps_blocks_and_results<const WORDS: bool>() {
        let (m, n, k) = (2, 19, 64);
        let mut seed = 5u64;
        let w = random_q4(n, k, &mut seed);
        let x: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
        let mut xq = vec![0u8; m * q8_row_bytes::<false>(k)];
        quantize_q8_0::<false>(&x, &mut xq, m, k);
        let mut w8 = w.clone();
        let mut tmp = vec![0u8; 8 * k / QK * BLOCK_BYTES];
        interleave_rows8::<WORDS>(&mut w8, &mut tmp, n, k);
        for r in 0..n {
            for b in 0..k / QK {
                let (d8, q8) = block_parts::<WORDS>(r, b, n, k / QK, true);
                let (d, q) = block_parts::<WORDS>(r, b, n, k / QK, false);
                assert_eq!(w8[d8..d8 + 2], w[d..d + 2]);
                for j in 0..16 {
                    assert_eq!(w8[q8.byte(j)], w[q.byte(j)], "row {r} block {b} byte {j}");
                }
            }
        }
        let mut ya = vec![0.0f32; m * n];
        let mut yb = vec![0.0f32; m * n];
        matmul_q4_0_q8_0::<false, WORDS>(&w, &xq, &mut ya, m, n, k, 0, n, false);
        matmul_q4_0_q8_0::<false, WORDS>(&w8, &xq, &mut yb, m, n, k, 0, n, true);
        assert_eq!(ya, yb);
    }

    #[test]
    fn interleave_rows8_keeps_every_block_and_the_results() {
        interleave_keeps_blocks_and_results::<false>();
        interleave_keeps_blocks_and_results::<true>();
    }

    fn rows8_row_gives_back_each_row<const WORDS: bool>() {
        // Two groups of 8 rows, then 3 rows left in GGML rows.
        let (n, k) = (19, 96);
        let mut seed = 13u64;
        let w = random_q4(n, k, &mut seed);
        let mut w8 = w.clone();
        let wrb = k / QK * BLOCK_BYTES;
        let mut tmp = vec![0u8; 8 * wrb];
        interleave_rows8::<WORDS>(&mut w8, &mut tmp, n, k);
        let mut row = vec![0u8; wrb];
        for r in 0..n {
            rows8_row::<WORDS>(&w8, &mut row, n, k, r);
            assert_eq!(row, w[r * wrb..(r + 1) * wrb], "row {r}");
        }
    }

    #[test]
    fn rows8_row_gives_back_each_row_as_it_was() {
        rows8_row_gives_back_each_row::<false>();
        rows8_row_gives_back_each_row::<true>();
    }

    #[test]
    fn word_major_rows8_puts_one_word_of_four_rows_in_each_16_bytes() {
        let (n, k) = (8, 32);
        let mut seed = 9u64;
        let w = random_q4(n, k, &mut seed);
        let mut w8 = w.clone();
        let mut tmp = vec![0u8; 8 * BLOCK_BYTES];
        interleave_rows8::<true>(&mut w8, &mut tmp, n, k);
        for half in 0..2 {
            for word in 0..4 {
                for lane in 0..4 {
                    let at = 16 + 64 * half + 16 * word + 4 * lane;
                    let row = (4 * half + lane) * BLOCK_BYTES + 2 + 4 * word;
                    assert_eq!(w8[at..at + 4], w[row..row + 4]);
                }
            }
        }
    }

    fn rows_independent<const WIDE: bool, const WORDS: bool>(rows8: bool) {
        let (n, k) = (21, 96);
        let mut seed = 11u64;
        let mut w = random_q4(n, k, &mut seed);
        if rows8 {
            let mut tmp = vec![0u8; 8 * k / QK * BLOCK_BYTES];
            interleave_rows8::<WORDS>(&mut w, &mut tmp, n, k);
        }
        let rb = q8_row_bytes::<WIDE>(k);
        for m in [2, 5, 17] {
            let x: Vec<f32> = (0..m * k).map(|_| 3.0 * lcg(&mut seed)).collect();
            let mut xq = vec![0u8; m * rb];
            quantize_q8_0::<WIDE>(&x, &mut xq, m, k);
            let mut y = vec![0.0f32; m * n];
            for (r0, r1) in [(0, 8), (8, 12), (12, n)] {
                matmul_q4_0_q8_0::<WIDE, WORDS>(&w, &xq, &mut y, m, n, k, r0, r1, rows8);
            }
            for t in 0..m {
                let mut one = vec![0.0f32; n];
                let row = &xq[t * rb..(t + 1) * rb];
                matmul_q4_0_q8_0::<WIDE, WORDS>(&w, row, &mut one, 1, n, k, 0, n, rows8);
                let got: Vec<u32> = y[t * n..(t + 1) * n].iter().map(|v| v.to_bits()).collect();
                let want: Vec<u32> = one.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "row {t} of {m}");
            }
        }
    }

    #[test]
    fn each_row_equals_its_single_row_result_for_any_m_and_split() {
        rows_independent::<false, false>(false);
        rows_independent::<false, false>(true);
        rows_independent::<false, true>(true);
        rows_independent::<true, false>(false);
        rows_independent::<true, false>(true);
    }

    #[test]
    fn wide_slot_is_a_permutation() {
        let mut seen = [false; 32];
        for j in 0..32 {
            seen[wide_slot(j)] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(wide_slot(0), 0);
        assert_eq!(wide_slot(16), 8);
        assert_eq!(wide_slot(1), 16);
        assert_eq!(wide_slot(17), 24);
    }
}
