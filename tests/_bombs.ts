/**
 * Gzip bombs for tests, spelled directly in deflate's fixed Huffman codes (a 258-byte copy
 * costs 13 bits), so a few MB that inflate to GBs are made in milliseconds instead of by
 * compressing GBs of zeros.
 */

/** Bits packed least significant first, as deflate writes them. */
class BitWriter {
  #bytes: Uint8Array;
  #bit = 0;

  constructor(capacity: number) {
    this.#bytes = new Uint8Array(capacity);
  }

  /** Appends `count` bits of `value`, least significant first. */
  bits(value: number, count: number): void {
    for (let i = 0; i < count; i++) this.#push((value >>> i) & 1);
  }

  /** Appends a Huffman code, most significant bit first. */
  code(value: number, count: number): void {
    for (let i = count - 1; i >= 0; i--) this.#push((value >>> i) & 1);
  }

  #push(bit: number): void {
    if (bit) this.#bytes[this.#bit >>> 3]! |= 1 << (this.#bit & 7);
    this.#bit++;
  }

  bytes(): Uint8Array {
    return this.#bytes.subarray(0, (this.#bit + 7) >>> 3);
  }
}

/** The fixed-Huffman code of literal byte `v`. */
function literal(out: BitWriter, v: number): void {
  if (v < 144) out.code(0x30 + v, 8);
  else out.code(0x190 + v - 144, 9);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(prefix: Uint8Array, zeros: number): number {
  let c = 0xffffffff;
  for (const b of prefix) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  for (let i = 0; i < zeros; i++) c = CRC_TABLE[c & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A gzip file that inflates to `prefix` followed by `zeros` zero bytes. Its trailer's CRC-32 is
 * right up to 64 MiB of zeros (checked by a full inflate); past that it is left 0, as a bomb is
 * never meant to be inflated to its end.
 */
export function gzipBomb(prefix: Uint8Array, zeros: number): Uint8Array {
  const copies = zeros > 0 ? Math.floor((zeros - 1) / 258) : 0;
  const tail = zeros > 0 ? zeros - 1 - copies * 258 : 0;
  const bits = 3 + 9 * (prefix.length + 1 + tail) + 13 * copies + 7;
  const out = new BitWriter((bits >>> 3) + 1);
  out.bits(1, 1); // BFINAL
  out.bits(1, 2); // BTYPE: fixed Huffman codes
  for (const b of prefix) literal(out, b);
  if (zeros > 0) literal(out, 0);
  for (let i = 0; i < copies; i++) {
    out.code(0xc5, 8); // length 258 (symbol 285)
    out.code(0, 5); // distance 1
  }
  for (let i = 0; i < tail; i++) literal(out, 0);
  out.code(0, 7); // end of block (symbol 256)
  const deflate = out.bytes();
  const total = prefix.length + zeros;
  const file = new Uint8Array(10 + deflate.length + 8);
  file.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  file.set(deflate, 10);
  const trailer = new DataView(file.buffer, 10 + deflate.length);
  trailer.setUint32(0, zeros <= 64 << 20 ? crc32(prefix, zeros) : 0, true);
  trailer.setUint32(4, total % 2 ** 32, true);
  return file;
}
