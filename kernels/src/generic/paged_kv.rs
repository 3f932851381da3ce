//! Paged KV cache. One cache tensor (a layer's K, or V) is a pool region of blocks of
//! `block_size` positions, items f16 or f32, rows `head_dim` items long. A sequence reaches
//! its positions through its block table: position p of kv head g lies in block
//! `table[p / block_size]`, row `p % block_size` of that block's rows for head g. The kv
//! heads are laid out in runs of `run_heads` heads, `run_stride` bytes apart: each run is
//! a sequence of blocks (run_heads, block_size, head_dim). One run of all the heads (the
//! default, `run_heads` 0) interleaves every head in each block; several runs let threads
//! that take the heads apart each read one stream of blocks. f16 items hold no subnormals
//! (`f16::f32_to_f16_normal`).

use super::attention::attend_row;
use super::f16::{f16_to_f32_finite, f32_to_f16_normal};

/// Query rows the SIMD `attention_paged` computes together over each block: a block's f16
/// rows are converted to f32 once for all of them (and for all the query heads of a kv head).
/// With 8, a prompt's attention (no GQA) spent a quarter of its time converting; with 32, the
/// scores of all the rows outgrew L2 from about 2048 positions on.
pub const PAGED_ROWS: usize = 16;

/// Item type and addressing of one paged cache tensor.
#[derive(Clone, Copy)]
pub struct PagedLayout {
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub block_size: usize,
    /// Items are f16 bits (else f32).
    pub f16: bool,
    /// Kv heads per run (0: all of them, one run).
    pub run_heads: usize,
    /// Bytes from one run of blocks to the next.
    pub run_stride: usize,
}

impl PagedLayout {
    #[inline(always)]
    pub fn item_bytes(&self) -> usize {
        if self.f16 {
            2
        } else {
            4
        }
    }

    /// Byte offset in the region of position p of kv head g.
    #[inline(always)]
    pub fn offset(&self, table: &[i32], p: usize, g: usize) -> usize {
        let block = table[p / self.block_size] as usize;
        block * self.block_stride()
            + self.head_start(g)
            + p % self.block_size * self.head_dim * self.item_bytes()
    }

    /// Bytes of one kv head's rows of a block.
    #[inline(always)]
    pub fn head_bytes(&self) -> usize {
        self.block_size * self.head_dim * self.item_bytes()
    }

    /// Kv heads per run.
    #[inline(always)]
    pub fn heads_per_run(&self) -> usize {
        if self.run_heads == 0 || self.run_heads > self.n_kv_heads {
            self.n_kv_heads
        } else {
            self.run_heads
        }
    }

    /// Bytes from block b to block b + 1 of one run.
    #[inline(always)]
    pub fn block_stride(&self) -> usize {
        self.heads_per_run() * self.head_bytes()
    }

    /// Byte offset of kv head g's rows within block 0.
    #[inline(always)]
    pub fn head_start(&self, g: usize) -> usize {
        let per = self.heads_per_run();
        g / per * self.run_stride + g % per * self.head_bytes()
    }

    /// Bytes of the region up to the end of block `blocks - 1` of the last kv head.
    #[inline(always)]
    pub fn extent(&self, blocks: usize) -> usize {
        if blocks == 0 || self.n_kv_heads == 0 {
            return 0;
        }
        (blocks - 1) * self.block_stride()
            + self.head_start(self.n_kv_heads - 1)
            + self.head_bytes()
    }

    /// Item i of the row at byte `o` of `region`, as f32: exact, but for f16 infinities and
    /// NaNs, which read as finite values of magnitude 2^16 to 2^17 (`f16_to_f32_finite`: the
    /// SIMD twin would spend as long again telling them apart).
    #[inline(always)]
    fn item(&self, region: &[u8], o: usize, i: usize) -> f32 {
        if self.f16 {
            let p = o + 2 * i;
            f16_to_f32_finite(u16::from_le_bytes([region[p], region[p + 1]]))
        } else {
            let p = o + 4 * i;
            f32::from_le_bytes([region[p], region[p + 1], region[p + 2], region[p + 3]])
        }
    }
}

/// Shapes of one paged attention call; query row t sits at position q_pos0 + t and sees
/// positions 0..=q_pos0 + t (causal), at most kv_len of them.
#[derive(Clone, Copy)]
pub struct PagedShape {
    pub m: usize,
    pub n_heads: usize,
    pub kv: PagedLayout,
    pub kv_len: usize,
    pub q_pos0: usize,
    pub scale: f32,
    /// Positions a query row sees at most, its own included (a sliding window); 0: all.
    pub window: usize,
}

impl PagedShape {
    /// The end of the positions query row t sees.
    #[inline(always)]
    pub fn visible(&self, t: usize) -> usize {
        super::attention::visible(self.q_pos0, t, self.kv_len)
    }

    /// The first position query row t sees.
    #[inline(always)]
    pub fn first(&self, t: usize) -> usize {
        let end = self.visible(t);
        if self.window > 0 && end > self.window {
            end - self.window
        } else {
            0
        }
    }
}

/// Writes positions pos0..pos0+count of every kv head from `src` (f32, item (g, s, i) at
/// `g * head_stride + s * row_stride + i`) into the region, converted to the item type
/// (f16 by `f32_to_f16_normal`).
#[allow(clippy::too_many_arguments)]
pub fn store_kv_paged(
    src: &[f32],
    head_stride: usize,
    row_stride: usize,
    region: &mut [u8],
    table: &[i32],
    kv: &PagedLayout,
    pos0: usize,
    count: usize,
) {
    for s in 0..count {
        for g in 0..kv.n_kv_heads {
            let o = kv.offset(table, pos0 + s, g);
            let from = g * head_stride + s * row_stride;
            for (i, &v) in src[from..from + kv.head_dim].iter().enumerate() {
                if kv.f16 {
                    region[o + 2 * i..o + 2 * i + 2]
                        .copy_from_slice(&f32_to_f16_normal(v).to_le_bytes());
                } else {
                    region[o + 4 * i..o + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
}

/// q (m, n_heads, head_dim) over the paged K and V regions -> out like q, heads `h0..h1`
/// only; `scores` holds at least kv_len floats. Each output takes the same f32 steps as
/// `attention_f32` over a contiguous cache holding the values the items read as.
#[allow(clippy::too_many_arguments)]
pub fn attention_paged(
    q: &[f32],
    out: &mut [f32],
    k_region: &[u8],
    v_region: &[u8],
    table: &[i32],
    scores: &mut [f32],
    s: &PagedShape,
    h0: usize,
    h1: usize,
) {
    let kv = &s.kv;
    if kv.n_kv_heads == 0 || s.n_heads % kv.n_kv_heads != 0 {
        return;
    }
    let hd = kv.head_dim;
    let group = s.n_heads / kv.n_kv_heads;
    for t in 0..s.m {
        let first = s.first(t);
        let len = s.visible(t) - first;
        for h in h0..h1.min(s.n_heads) {
            let g = h / group;
            let qo = (t * s.n_heads + h) * hd;
            attend_row(
                &q[qo..qo + hd],
                len,
                s.scale,
                |j, i| kv.item(k_region, kv.offset(table, first + j, g), i),
                |j, i| kv.item(v_region, kv.offset(table, first + j, g), i),
                scores,
                &mut out[qo..qo + hd],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::attention::{attention_f32, AttentionShape};
    use super::super::f16::f16_to_f32;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + seed) * 37 % 29) as f32 - 14.0) * 0.09)
            .collect()
    }

    /// A block table for `len` positions (blocks in reverse order, ids 1..=blocks of
    /// blocks + 2), its region, and the contiguous (n_kv, len, hd) cache it should read as.
    fn paged(kv: &PagedLayout, len: usize, seed: usize) -> (Vec<i32>, Vec<u8>, Vec<f32>) {
        let blocks = (len + kv.block_size - 1) / kv.block_size;
        let table: Vec<i32> = (0..blocks).map(|b| (blocks - b) as i32).collect();
        let mut region = vec![0xa5u8; kv.extent(blocks + 2)];
        let src = values(kv.n_kv_heads * len * kv.head_dim, seed);
        store_kv_paged(
            &src,
            len * kv.head_dim,
            kv.head_dim,
            &mut region,
            &table,
            kv,
            0,
            len,
        );
        let read: Vec<f32> = src
            .iter()
            .map(|&v| if kv.f16 { f16_to_f32(f32_to_f16_normal(v)) } else { v })
            .collect();
        (table, region, read)
    }

    #[test]
    fn store_kv_paged_places_rows_by_table_from_either_source_layout() {
        let kv = PagedLayout {
            n_kv_heads: 2,
            head_dim: 3,
            block_size: 4,
            f16: true,
            run_heads: 0,
            run_stride: 0,
        };
        let table = [2, 0];
        let mut region = vec![0u8; kv.extent(3)];
        // (S, n_kv, hd) source: head stride hd, row stride n_kv * hd.
        let src = values(6 * 2 * 3, 1);
        store_kv_paged(&src, 3, 6, &mut region, &table, &kv, 1, 6);
        for s in 0..6 {
            for g in 0..2 {
                let o = kv.offset(&table, 1 + s, g);
                for i in 0..3 {
                    let want = f32_to_f16_normal(src[s * 6 + g * 3 + i]);
                    assert_eq!(
                        u16::from_le_bytes([region[o + 2 * i], region[o + 2 * i + 1]]),
                        want
                    );
                }
            }
        }
        assert_eq!(kv.offset(&table, 5, 1), ((0 * 2 + 1) * 4 + 1) * 3 * 2);
        // Runs of one head: head 1's blocks start 3 blocks of one head in.
        let major = PagedLayout {
            run_heads: 1,
            run_stride: 3 * kv.head_bytes(),
            ..kv
        };
        assert_eq!(
            major.offset(&table, 5, 1),
            3 * 4 * 3 * 2 + (0 * 4 + 1) * 3 * 2
        );
        assert_eq!(major.extent(3), 3 * 4 * 3 * 2 + 3 * 4 * 3 * 2);
        let mut other = vec![0u8; major.extent(3)];
        store_kv_paged(&src, 3, 6, &mut other, &table, &major, 1, 6);
        for s in 0..6 {
            for g in 0..2 {
                let (o, p) = (kv.offset(&table, 1 + s, g), major.offset(&table, 1 + s, g));
                assert_eq!(region[o..o + 6], other[p..p + 6]);
            }
        }
        for g in 0..2 {
            let o = kv.offset(&table, 0, g);
            assert!(
                region[o..o + 6].iter().all(|&b| b == 0),
                "position 0 was written"
            );
        }
    }

    /// The queries (m, 4 heads, 10), the paged attention's output over `kv_len` cached
    /// positions of keys and values in `kv`'s layout (scale 0.3), and those keys and values
    /// as a contiguous cache (2 kv heads, kv_len, 10).
    fn run_paged(
        kv: PagedLayout,
        m: usize,
        kv_len: usize,
        q_pos0: usize,
        window: usize,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let (table, kr, kc) = paged(&kv, kv_len, 2);
        let (same, vr, vc) = paged(&kv, kv_len, 7);
        assert_eq!(table, same);
        let q = values(m * 4 * 10, 3);
        let s = PagedShape {
            m,
            n_heads: 4,
            kv,
            kv_len,
            q_pos0,
            scale: 0.3,
            window,
        };
        let mut out = vec![0.0f32; q.len()];
        let mut scores = vec![0.0f32; kv_len];
        attention_paged(&q, &mut out, &kr, &vr, &table, &mut scores, &s, 0, 4);
        (q, out, kc, vc)
    }

    /// Contiguous attention of `q` (rows, 4 heads, 10) over `len` positions of `kc` and `vc`
    /// (2 kv heads, len, 10), the rows at positions `q_pos0..`.
    fn contiguous(q: &[f32], kc: &[f32], vc: &[f32], len: usize, q_pos0: usize) -> Vec<f32> {
        let cs = AttentionShape {
            m: q.len() / 40,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 10,
            capacity: len,
            kv_len: len,
            q_pos0,
            scale: 0.3,
        };
        let mut want = vec![0.0f32; q.len()];
        let mut scores = vec![0.0f32; len];
        attention_f32(q, kc, vc, &mut want, &mut scores, &cs, 0, 4);
        want
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn attention_paged_equals_contiguous_attention_on_the_same_values() {
        // One run, then runs of one head of 6 blocks each (the table names blocks 1..=4).
        for (f16, runs) in [(false, 0), (true, 0), (false, 6), (true, 6)] {
            let item = if f16 { 2 } else { 4 };
            let kv = PagedLayout {
                n_kv_heads: 2,
                head_dim: 10,
                block_size: 3,
                f16,
                run_heads: if runs > 0 { 1 } else { 0 },
                run_stride: runs * 3 * 10 * item,
            };
            let (m, kv_len, q_pos0) = (3, 11, 8);
            let (q, out, kc, vc) = run_paged(kv, m, kv_len, q_pos0, 0);
            let want = contiguous(&q, &kc, &vc, kv_len, q_pos0);
            assert_eq!(bits(&out), bits(&want), "f16 {f16}, runs of {runs} blocks");
        }
    }

    #[test]
    fn attention_paged_with_a_window_equals_attention_over_the_positions_each_row_sees() {
        let kv = PagedLayout {
            n_kv_heads: 2,
            head_dim: 10,
            block_size: 3,
            f16: true,
            run_heads: 0,
            run_stride: 0,
        };
        let (m, kv_len, q_pos0, window) = (4, 11, 7, 5);
        let (q, out, kc, vc) = run_paged(kv, m, kv_len, q_pos0, window);
        // Row t sees positions q_pos0 + t + 1 - window ..= q_pos0 + t: a contiguous cache of
        // just those, its query the last one.
        for t in 0..m {
            let end = q_pos0 + t + 1;
            let first = end - window;
            let slice = |c: &[f32]| -> Vec<f32> {
                (0..2)
                    .flat_map(|g| c[(g * kv_len + first) * 10..(g * kv_len + end) * 10].to_vec())
                    .collect()
            };
            let row = &q[t * 40..(t + 1) * 40];
            let want = contiguous(row, &slice(&kc), &slice(&vc), window, window - 1);
            assert_eq!(bits(&out[t * 40..(t + 1) * 40]), bits(&want), "row {t}");
        }
    }
}
