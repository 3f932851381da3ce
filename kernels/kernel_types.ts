/**
 * The shapes and the calls of the kernels as TypeScript sees them: weight layouts, attention
 * shapes, matmul targets, and {@link KernelOps}, which both the SIMD build and its scalar twins
 * implement.
 */

/**
 * Byte layout of a Q4_0 weight (n, k): `"ggml"` rows of 18-byte blocks as tract and GGUF
 * store them, or `"rows8"` after {@linkcode Kernels.interleaveQ4_0Rows8} (same bytes, each
 * group of 8 rows block-interleaved so decoding streams the weights in order).
 */
export type Q4Layout = "ggml" | "rows8";

/** Shapes of one attention call over a KV cache laid out (n_kv_heads, capacity, head_dim). */
export interface AttentionShape {
  /** Query rows (tokens). */
  m: number;
  /** Query heads. */
  nHeads: number;
  /** Divides `nHeads` (grouped-query attention). */
  nKvHeads: number;
  /** Values per head. */
  headDim: number;
  /** Positions the cache holds per kv head. */
  capacity: number;
  /** Valid positions in the cache. */
  kvLen: number;
  /** Cache position of query row 0; row t sees positions 0..=qPos0 + t (causal). */
  qPos0: number;
  /** Score scale, usually 1 / sqrt(headDim). */
  scale: number;
}

/** Item type of a paged KV cache: f16 (default in a model's cache) or f32 (exact reference). */
export type KvItem = "f16" | "f32";

/**
 * Shapes of one `attentionPaged` call. Each cache tensor (a layer's K, or V) is a pool
 * region of blocks of `blockSize` positions, rows of `headDim` `item`s. A sequence's block
 * table (i32 block ids) maps position p to block `table[p / blockSize]`. The kv heads lie in
 * runs of `runHeads` heads, `runStride` bytes apart; each run is a sequence of blocks
 * (runHeads, blockSize, headDim): position p of kv head g is at byte
 * `base + floor(g / runHeads) * runStride + ((table[p / blockSize] * runHeads + g % runHeads) * blockSize + p % blockSize) * headDim * itemBytes`.
 * One run of every head (the default) interleaves them in each block; several runs give the
 * threads that take the heads apart one stream of blocks each, which they read at full
 * speed (slices of interleaved blocks read slower over two threads than over one).
 */
export interface PagedAttentionShape {
  /** Query rows (tokens). */
  m: number;
  /** Query heads; head h reads kv head floor(h / (nHeads / nKvHeads)). */
  nHeads: number;
  /** Divides `nHeads` (grouped-query attention). */
  nKvHeads: number;
  /** Values per head. */
  headDim: number;
  /** Positions per block. */
  blockSize: number;
  /** Valid positions of the sequence. */
  kvLen: number;
  /** Position of query row 0; row t sees positions 0..=qPos0 + t (causal). */
  qPos0: number;
  /** Positions a row sees at most, its own included (a sliding window); 0 or absent: all. */
  window?: number;
  /** Score scale, usually 1 / sqrt(headDim). */
  scale: number;
  /** Cache item type. */
  item: KvItem;
  /** Kv heads per run (default: all, one run). */
  runHeads?: number;
  /** Bytes from one run of blocks to the next. */
  runStride?: number;
}

/** One `attentionPaged` call of an `attentionPagedMany` job: its offsets and shapes. */
export interface PagedAttentionCall {
  /** Byte offset of q (m, nHeads, headDim) f32. */
  q: number;
  /** Byte offset of out (m, nHeads, headDim) f32. */
  out: number;
  /** Byte offset of the K region. */
  kBase: number;
  /** Byte offset of the V region. */
  vBase: number;
  /** Byte offset of the block table (i32 block ids). */
  table: number;
  /** Its shapes. */
  shape: PagedAttentionShape;
}

/** One product of a `matmul*Many` call: W (n, k) at `w` @ the shared input -> y (m, n) at `y`. */
export interface MatmulTarget {
  /** Byte offset of W (n, k). */
  w: number;
  /** Byte offset of the output y (m, n), f32. */
  y: number;
  /** Rows of W. */
  n: number;
  /** Byte layout of a Q4_0 W (default "ggml"); ignored for f32 and f16 weights. */
  layout?: Q4Layout;
}

/** A slot in the weights region: write the tensor bytes into `bytes` once. */
export interface WeightSlot {
  /** Byte offset of the slot in `Kernels.memory`: what the kernels take. */
  offset: number;
  /** View of the slot; valid until the memory grows again (take a new one with `u8`). */
  bytes: Uint8Array;
}

/**
 * The kernels, over byte offsets into `Kernels.memory`. Matrices are row-major;
 * weights W are (n, k) like `linear`, activations x are (m, k), outputs y are (m, n).
 */
export interface KernelOps {
  /** x (m, k) f32 -> xq (m, q8RowBytes(k)) Q8_0 activations; k % 32 == 0. */
  quantizeQ8_0(x: number, xq: number, m: number, k: number): void;
  /** W (n, k) Q4_0 (18-byte blocks, `layout`, default "ggml") @ xq (m, k) Q8_0 -> y (m, n) f32. */
  matmulQ4_0Q8_0(
    w: number,
    xq: number,
    y: number,
    m: number,
    n: number,
    k: number,
    layout?: Q4Layout,
  ): void;
  /**
   * Several Q4_0 products of one quantized input xq (m, k), e.g. q/k/v or gate/up, as one
   * job over the threads: one hand-off instead of one per product.
   */
  matmulQ4_0Q8_0Many(xq: number, m: number, k: number, targets: readonly MatmulTarget[]): void;
  /** W (n, k) f32 @ x (m, k) f32 -> y (m, n). */
  matmulF32(w: number, x: number, y: number, m: number, n: number, k: number): void;
  /** Several f32-weight products of one input x (m, k) as one job (see `matmulQ4_0Q8_0Many`). */
  matmulF32Many(x: number, m: number, k: number, targets: readonly MatmulTarget[]): void;
  /** W (n, k) f16 bits @ x (m, k) f32 -> y (m, n). */
  matmulF16(w: number, x: number, y: number, m: number, n: number, k: number): void;
  /** Several f16-weight products of one input x (m, k) as one job (see `matmulQ4_0Q8_0Many`). */
  matmulF16Many(x: number, m: number, k: number, targets: readonly MatmulTarget[]): void;
  /** x (m, d) -> y (m, d) = x / sqrt(mean(x^2) + eps) * w; w (d,) or 0 for none; y may be x. */
  rmsNorm(x: number, w: number, y: number, m: number, d: number, eps: number): void;
  /** x (m, nHeads, headDim), cos/sin (m, headDim) -> y = x * cos + rotate_half(x) * sin; y may be x. */
  ropeRotateHalf(
    x: number,
    cos: number,
    sin: number,
    y: number,
    m: number,
    nHeads: number,
    headDim: number,
  ): void;
  /** a, b (len) -> y = a + b; y may be a or b. */
  add(a: number, b: number, y: number, len: number): void;
  /** a, b (len) -> y = silu(a) * b; y may be a or b. */
  siluGate(a: number, b: number, y: number, len: number): void;
  /** x (m, n) -> y (m, n), softmax along rows; y may be x. */
  softmax(x: number, y: number, m: number, n: number): void;
  /**
   * A sampler's weights: x (n) -> w (n) = e^((x - max) * scale), 0 where that is NaN; the f64
   * sum of w goes to `total` (8-byte aligned).
   */
  weighLogits(x: number, w: number, n: number, max: number, scale: number, total: number): void;
  /** q (m, nHeads, headDim), caches (nKvHeads, capacity, headDim) -> out (m, nHeads, headDim). */
  attention(q: number, kCache: number, vCache: number, out: number, shape: AttentionShape): void;
  /**
   * q (m, nHeads, headDim) f32 over paged K and V regions at `kBase` and `vBase`, read in
   * place through the block table `table` -> out (m, nHeads, headDim) f32. Every query row
   * gets the bits it would get alone (m = 1 at its position), and the bits `attention` gives
   * over a contiguous cache of the values the items read as: f16 items read exactly, but
   * for infinities and NaNs, which read as finite values of magnitude 2^16 to 2^17.
   */
  attentionPaged(
    q: number,
    out: number,
    kBase: number,
    vBase: number,
    table: number,
    shape: PagedAttentionShape,
  ): void;
  /**
   * Every call as `attentionPaged` computes it, bit for bit, as one job: the threads share
   * the heads of all the calls (several sequences' attention in one hand-off).
   */
  attentionPagedMany(calls: readonly PagedAttentionCall[]): void;
  /**
   * Writes positions pos0..pos0+count of every kv head into the paged region at `base`
   * (block table `table`, see {@linkcode PagedAttentionShape}) from f32 `src`, whose item
   * (g, s, i) sits at element `g * srcHeadStride + s * srcRowStride + i`: both a
   * (nKvHeads, S, headDim) and an (S, nKvHeads, headDim) tensor are read in place. f16 items
   * are rounded to nearest even, as `Float16Array` does. `kvRunHeads` and `kvRunStride`:
   * the region's runs (see {@linkcode PagedAttentionShape}; one run by default).
   */
  storeKvPaged(
    src: number,
    srcHeadStride: number,
    srcRowStride: number,
    base: number,
    table: number,
    blockSize: number,
    itemType: KvItem,
    nKvHeads: number,
    headDim: number,
    pos0: number,
    count: number,
    kvRunHeads?: number,
    kvRunStride?: number,
  ): void;
}
