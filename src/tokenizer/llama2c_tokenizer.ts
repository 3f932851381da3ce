import { concatBytes } from "../storage/bytes.ts";
import { bytePiece, type Tokenizer } from "./tokenizer.ts";
import { MergeQueue } from "./tokenizer_merge_queue.ts";

const BOS = 1;
const EOS = 2;
const BYTE_OFFSET = 3;

/** One vocabulary entry of a llama2.c `tokenizer.bin`: its raw bytes and merge score. */
export interface Llama2cPiece {
  /** The piece's raw bytes (a space is a plain 0x20). */
  readonly bytes: Uint8Array;
  /** Merge priority: higher merges first. */
  readonly score: number;
}

/**
 * The llama2.c tokenizer (`tokenizer.bin`, `tok512.bin`), encoding and decoding exactly as
 * llama2.c `run.c` does: a dummy " " prefix, UTF-8 characters (byte fallback at id + 3),
 * then repeated merges of the adjacent pair whose concatenation scores highest.
 */
export class Llama2cTokenizer implements Tokenizer {
  /** Number of pieces in the file. */
  readonly vocabSize: number;
  readonly bos: number | null = BOS;
  /** llama2.c's `run` stops on BOS; EOS ends a story too. */
  readonly eos: readonly number[] = [EOS, BOS];
  /** The file's `max_token_length` header. */
  readonly maxTokenLength: number;
  /** Pieces by id. */
  readonly pieces: readonly Llama2cPiece[];
  #binary: string[];
  #lookup = new Map<string, number>();

  /** Indexes `pieces` for encoding. */
  constructor(pieces: readonly Llama2cPiece[], maxTokenLength: number) {
    this.pieces = pieces;
    this.vocabSize = pieces.length;
    this.maxTokenLength = maxTokenLength;
    this.#binary = pieces.map((p) => binaryString(p.bytes));
    this.#binary.forEach((s, id) => {
      if (!this.#lookup.has(s)) this.#lookup.set(s, id);
    });
  }

  encode(text: string, options: { readonly addBos?: boolean } = {}): number[] {
    const tokens: number[] = [];
    if (options.addBos ?? true) tokens.push(BOS);
    const bytes = new TextEncoder().encode(text);
    if (bytes.length > 0) tokens.push(this.#lookup.get(" ") ?? -1);
    let start = 0;
    while (start < bytes.length) {
      let end = start + 1;
      while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - start < 4) end++;
      const id = this.#lookup.get(binaryString(bytes.subarray(start, end)));
      if (id !== undefined) tokens.push(id);
      else for (let i = start; i < end; i++) tokens.push(bytes[i]! + BYTE_OFFSET);
      start = end;
    }
    this.#merge(tokens);
    return tokens;
  }

  /**
   * llama2.c's loop (merge the adjacent pair whose concatenation scores highest, the leftmost
   * on ties, until none is in the vocabulary) run over a linked list with a heap of candidate
   * pairs, stale entries skipped, so long texts cost O(n log n) rather than O(n²).
   */
  #merge(tokens: number[]): void {
    const n = tokens.length;
    const ids = Int32Array.from(tokens); // (n,) the token at each live position
    const next = new Int32Array(n).map((_, i) => (i + 1 < n ? i + 1 : -1)); // (n,)
    const prev = new Int32Array(n).map((_, i) => i - 1); // (n,)
    const alive = new Uint8Array(n).fill(1); // (n,)
    const heap = new MergeQueue<Pair>();
    const consider = (left: number) => {
      const right = left < 0 ? -1 : next[left]!;
      if (right < 0) return;
      const id = this.#lookup.get(this.#text(ids[left]!) + this.#text(ids[right]!));
      if (id === undefined) return;
      const score = this.pieces[id]!.score;
      if (score > -1e10) {
        heap.push({ score, left, right, leftId: ids[left]!, rightId: ids[right]!, id });
      }
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.size > 0) {
      const pair = heap.pop();
      const { left, right } = pair;
      if (
        !alive[left] || !alive[right] || next[left] !== right || ids[left] !== pair.leftId ||
        ids[right] !== pair.rightId
      ) continue;
      ids[left] = pair.id;
      alive[right] = 0;
      next[left] = next[right]!;
      if (next[right]! >= 0) prev[next[right]!] = left;
      if (prev[left]! >= 0) consider(prev[left]!);
      consider(left);
    }
    tokens.length = 0;
    for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]!) tokens.push(ids[i]!);
  }

  #text(id: number): string {
    return this.#binary[id] ?? "";
  }

  decode(ids: readonly number[]): string {
    const chunks: Uint8Array[] = [];
    let prev = -1;
    for (const id of ids) {
      if (id > EOS || id < 0) {
        let bytes = this.tokenBytes(id);
        if (prev === BOS && bytes[0] === 0x20) bytes = bytes.subarray(1);
        chunks.push(bytes);
      }
      prev = id;
    }
    return new TextDecoder().decode(concatBytes(chunks));
  }

  tokenBytes(id: number): Uint8Array {
    const piece = this.pieces[id];
    if (piece === undefined || id <= EOS) return new Uint8Array(0);
    const byte = bytePiece(this.#text(id));
    return byte === null ? piece.bytes : Uint8Array.of(byte);
  }
}

interface Pair {
  readonly score: number;
  readonly left: number;
  readonly right: number;
  readonly leftId: number;
  readonly rightId: number;
  readonly id: number;
}

/**
 * Parses a llama2.c tokenizer file: int32 max_token_length, then per token
 * {f32 score, i32 length, bytes} until the end of the file.
 *
 * @throws {RangeError} when the file is truncated or a length is impossible
 */
export function parseLlama2cTokenizer(bytes: Uint8Array, name = "tokenizer.bin"): Llama2cTokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) throw new RangeError(`Truncated llama2.c tokenizer ${name}: no header`);
  const maxTokenLength = view.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > 1 << 16) {
    throw new RangeError(`Bad max_token_length ${maxTokenLength} in llama2.c tokenizer ${name}`);
  }
  const pieces: Llama2cPiece[] = [];
  let offset = 4;
  while (offset < bytes.length) {
    if (offset + 8 > bytes.length) {
      throw new RangeError(
        `Truncated llama2.c tokenizer ${name}: token ${pieces.length} header at offset ${offset}`,
      );
    }
    const score = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    if (length < 0 || length > maxTokenLength || offset + length > bytes.length) {
      throw new RangeError(
        `Bad length ${length} of token ${pieces.length} at offset ${
          offset - 4
        } in llama2.c tokenizer ${name}`,
      );
    }
    pieces.push({ bytes: bytes.slice(offset, offset + length), score });
    offset += length;
  }
  if (pieces.length <= BYTE_OFFSET + 255) {
    throw new RangeError(
      `Llama2.c tokenizer ${name} has ${pieces.length} tokens, fewer than the 259 of its fixed ids`,
    );
  }
  return new Llama2cTokenizer(pieces, maxTokenLength);
}

/** Each byte as one UTF-16 code unit, so that byte strings can key a Map. */
export function binaryString(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return s;
}
