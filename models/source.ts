import type { LlamaConfig } from "./llama.ts";

/**
 * A weight's values once read: f32 values, binary16 bit patterns or Q4_0 blocks carried over
 * as they are (an f16 weight stored as f16 is never widened).
 */
export type LoadedTensor =
  | { readonly kind: "f32"; readonly values: Float32Array }
  | { readonly kind: "f16"; readonly bits: Uint16Array }
  | { readonly kind: "q40"; readonly blocks: Uint8Array };

/** Little-endian binary16 items as bit patterns, a view unless `bytes` sits at an odd offset. */
export function f16BitsOf(bytes: Uint8Array): Uint16Array {
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.length / 2);
}

/** How a weight is stored in the input. */
export type SourceType =
  | "f32"
  | "f16"
  | "bf16"
  | "q40"
  | "q80"
  | "q41"
  | "q50"
  | "q51"
  | "iq4nl"
  | "iq4xs"
  | "q2k"
  | "q3k"
  | "q4k"
  | "q5k"
  | "q6k";

/** One weight of the input model, under its Hugging Face name, read on demand. */
export interface SourceTensor {
  readonly name: string;
  /** Logical row-major shape, as HF names it (`[out, in]` for linear weights). */
  readonly shape: readonly number[];
  readonly sourceType: SourceType;
  /** Reads the tensor; the caller drops it before loading the next one. */
  load(): Promise<LoadedTensor>;
}

/** A non-tensor member the archive carries (tokenizer, configs). */
export interface ExtraFile {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** An opened input model: config, weights by HF name, files to copy into the archive. */
export interface ModelSource {
  /** What the input was, for the progress line and the properties (`llama2c`, `hf`, `gguf`). */
  readonly format: string;
  readonly name: string;
  readonly config: LlamaConfig;
  /** The HF `config.json` written into the archive. */
  readonly hfConfig: Record<string, unknown>;
  readonly tensors: ReadonlyMap<string, SourceTensor>;
  readonly files: readonly ExtraFile[];
  close(): Promise<void>;
}

/**
 * Reorders the rows of a q or k projection from interleaved RoPE pairs (llama2.c, GGUF
 * llama: row h*hd + 2i + j) to HF's rotate-half order (row h*hd + j*hd/2 + i). Works on the
 * raw bytes of any row layout (f32 values or Q4_0 blocks), `rowBytes` bytes per row.
 */
export function interleavedToHalves(
  bytes: Uint8Array,
  layout: { readonly heads: number; readonly rowBytes: number },
): Uint8Array {
  const { heads, rowBytes } = layout;
  const rows = bytes.length / rowBytes;
  const headDim = rows / heads;
  if (!Number.isInteger(rows) || !Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new RangeError(
      `Cannot reorder ${rows} rows into ${heads} heads of an even size for RoPE`,
    );
  }
  const half = headDim / 2;
  const out = new Uint8Array(bytes.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + 2 * i + j) * rowBytes;
        const to = (h * headDim + j * half + i) * rowBytes;
        out.set(bytes.subarray(from, from + rowBytes), to);
      }
    }
  }
  return out;
}

/** `interleavedToHalves` for f32 values of a `[rows, cols]` matrix. */
export function interleavedToHalvesF32(
  values: Float32Array,
  layout: { readonly heads: number; readonly cols: number },
): Float32Array {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = interleavedToHalves(bytes, { heads: layout.heads, rowBytes: layout.cols * 4 });
  return new Float32Array(out.buffer);
}
