import assert from "node:assert/strict";
import { join } from "node:path";
import { f32ToF16 } from "../tensor/f16.ts";
import {
  BLOCK32_BYTES,
  dequantizeIQ4NL,
  dequantizeIQ4XS,
  dequantizeQ2K,
  dequantizeQ3K,
  dequantizeQ41,
  dequantizeQ4K,
  dequantizeQ50,
  dequantizeQ51,
  dequantizeQ5K,
  dequantizeQ6K,
  dequantizeQ80,
  KQUANT_BLOCK_BYTES,
  QK_K,
} from "./ggml_quants.ts";

/** Writes `value` as little-endian f16 at `at`. */
function putF16(bytes: Uint8Array, at: number, value: number): void {
  const bits = f32ToF16(value);
  bytes[at] = bits & 0xff;
  bytes[at + 1] = bits >> 8;
}

/**
 * The 12 bytes that hold eight 6-bit scales and mins, as llama.cpp's format describes them:
 * sub-blocks 0-3 in the low six bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 in the nibbles
 * of bytes 8-11 (scale low, min high), their top two bits in the top bits of bytes 0-7.
 */
function packScales(scales: readonly number[], mins: readonly number[]): number[] {
  const out = new Array<number>(12).fill(0);
  for (let j = 0; j < 4; j++) {
    out[j] = scales[j]! | ((scales[j + 4]! >> 4) << 6);
    out[j + 4] = mins[j]! | ((mins[j + 4]! >> 4) << 6);
    out[j + 8] = (scales[j + 4]! & 0xf) | ((mins[j + 4]! & 0xf) << 4);
  }
  return out;
}

Deno.test("dequantizeQ4K and dequantizeQ5K: d * scale * q - dmin * min, sub-block by sub-block", () => {
  const scales = [1, 7, 63, 20, 33, 48, 5, 62];
  const mins = [0, 3, 61, 16, 17, 40, 63, 9];
  const [d, dmin] = [0.5, 0.25];
  // Value i of the block: sub-block j = i / 32 of pair p = i / 64, a nibble of byte 32 p + i % 32.
  const quant = (i: number) => (i * 7 + 3) % 16;
  const q4 = new Uint8Array(KQUANT_BLOCK_BYTES.q4k);
  putF16(q4, 0, d);
  putF16(q4, 2, dmin);
  q4.set(packScales(scales, mins), 4);
  for (let i = 0; i < QK_K; i++) {
    const [pair, j, l] = [Math.floor(i / 64), Math.floor(i / 32), i % 32];
    q4[16 + 32 * pair + l]! |= j % 2 === 0 ? quant(i) : quant(i) << 4;
  }
  const expected = Array.from(
    { length: QK_K },
    (_, i) => d * scales[i >> 5]! * quant(i) - dmin * mins[i >> 5]!,
  );
  assert.deepEqual([...dequantizeQ4K(q4)], expected);

  // Q5_K: the same with a fifth bit, bit 2 p (low nibbles) or 2 p + 1 (high) of qh[l].
  const high = (i: number) => (i * 5) % 3 === 0;
  const q5 = new Uint8Array(KQUANT_BLOCK_BYTES.q5k);
  q5.set(q4.subarray(0, 16));
  q5.set(q4.subarray(16), 48);
  for (let i = 0; i < QK_K; i++) {
    if (high(i)) q5[16 + (i % 32)]! |= 1 << Math.floor(i / 32);
  }
  assert.deepEqual(
    [...dequantizeQ5K(q5)],
    expected.map((v, i) => v + (high(i) ? d * scales[i >> 5]! * 16 : 0)),
  );
});

Deno.test("dequantizeQ6K: d * scale * (q - 32), 6-bit q from a nibble and two high bits", () => {
  const block = new Uint8Array(KQUANT_BLOCK_BYTES.q6k);
  const scales = Array.from({ length: 16 }, (_, i) => (i % 2 ? -1 : 1) * (i * 7 + 1)); // int8
  const q = (i: number) => (i * 13 + 5) % 64;
  // Value i: half h = i / 128, quarter k = (i % 128) / 32, l = i % 32; its nibble is in
  // ql[64 h + l + 32 (k % 2)] (low for k < 2), its high bits at 2 k of qh[32 h + l].
  for (let i = 0; i < QK_K; i++) {
    const [h, k, l] = [Math.floor(i / 128), Math.floor((i % 128) / 32), i % 32];
    const at = 64 * h + l + 32 * (k % 2);
    block[at]! |= k < 2 ? q(i) & 0xf : (q(i) & 0xf) << 4;
    block[128 + 32 * h + l]! |= (q(i) >> 4) << (2 * k);
  }
  scales.forEach((s, i) => (block[192 + i] = s & 0xff));
  putF16(block, 208, 0.125);
  // Scale s of value i: 8 h + 2 k + (l >= 16).
  const expected = Array.from({ length: QK_K }, (_, i) => {
    const [h, k, l] = [Math.floor(i / 128), Math.floor((i % 128) / 32), i % 32];
    return 0.125 * scales[8 * h + 2 * k + (l >> 4)]! * (q(i) - 32);
  });
  assert.deepEqual([...dequantizeQ6K(block)], expected);
});

/** Where `.ci/llama_cpp_gguf_py.sh` puts llama.cpp's gguf-py quants. */
function ggufPyDir(): string {
  const env = (name: string) => Deno.env.get(name) || undefined;
  const cache = env("RILL_TEST_CACHE") ??
    join(env("XDG_CACHE_HOME") ?? join(env("HOME") ?? ".", ".cache"), "rill-tests");
  return join(cache, "llama-cpp-gguf-py-3.22.1");
}

/** llama.cpp's own Python reading of `bytes` as `type` (`Q4_K`, ...), through numpy. */
async function ggufPyDequantize(bytes: Uint8Array, type: string): Promise<Float32Array> {
  const dir = ggufPyDir();
  try {
    await Deno.stat(join(dir, "gguf", "quants.py"));
  } catch {
    assert.fail(
      `llama.cpp's gguf-py quants are not in ${dir}: run 'bash .ci/llama_cpp_gguf_py.sh' ` +
        "(and have numpy: apt-get install python3-numpy)",
    );
  }
  const script = [
    "import sys, numpy as np",
    "from gguf.quants import dequantize",
    "from gguf.constants import GGMLQuantizationType as T",
    "data = np.frombuffer(sys.stdin.buffer.read(), dtype=np.uint8)",
    `sys.stdout.buffer.write(dequantize(data, T.${type}).astype(np.float32).tobytes())`,
  ].join("\n");
  const child = new Deno.Command("python3", {
    args: ["-c", script],
    env: { PYTHONPATH: dir },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(bytes);
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return new Float32Array(stdout.buffer, stdout.byteOffset, stdout.byteLength / 4);
}

/** `blocks` k-quant blocks of random bits, their f16 scales made finite and small. */
function randomBlocks(blockBytes: number, blocks: number, scalesAt: number[], seed: number) {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) >>> 0) >>> 16;
  const bytes = Uint8Array.from({ length: blockBytes * blocks }, () => next() & 0xff);
  for (let b = 0; b < blocks; b++) {
    for (const at of scalesAt) putF16(bytes, b * blockBytes + at, (next() % 2000 - 1000) / 65536);
  }
  return bytes;
}

Deno.test("every quantized type read as llama.cpp's gguf-py reads it, bit for bit, on random blocks", async () => {
  const cases = [
    ["Q4_1", dequantizeQ41, randomBlocks(BLOCK32_BYTES.q41, 512, [0, 2], 6)],
    ["Q5_0", dequantizeQ50, randomBlocks(BLOCK32_BYTES.q50, 512, [0], 7)],
    ["Q5_1", dequantizeQ51, randomBlocks(BLOCK32_BYTES.q51, 512, [0, 2], 8)],
    ["Q8_0", dequantizeQ80, randomBlocks(BLOCK32_BYTES.q80, 512, [0], 9)],
    ["IQ4_NL", dequantizeIQ4NL, randomBlocks(BLOCK32_BYTES.iq4nl, 512, [0], 10)],
    ["Q2_K", dequantizeQ2K, randomBlocks(KQUANT_BLOCK_BYTES.q2k, 64, [80, 82], 4)],
    ["Q3_K", dequantizeQ3K, randomBlocks(KQUANT_BLOCK_BYTES.q3k, 64, [108], 5)],
    ["Q4_K", dequantizeQ4K, randomBlocks(KQUANT_BLOCK_BYTES.q4k, 64, [0, 2], 1)],
    ["Q5_K", dequantizeQ5K, randomBlocks(KQUANT_BLOCK_BYTES.q5k, 64, [0, 2], 2)],
    ["Q6_K", dequantizeQ6K, randomBlocks(KQUANT_BLOCK_BYTES.q6k, 64, [208], 3)],
    ["IQ4_XS", dequantizeIQ4XS, randomBlocks(KQUANT_BLOCK_BYTES.iq4xs, 64, [0], 11)],
  ] as const;
  for (const [type, dequantize, bytes] of cases) {
    const ours = dequantize(bytes);
    const theirs = await ggufPyDequantize(bytes, type);
    assert.equal(ours.length, 64 * QK_K, type);
    assert.equal(theirs.length, ours.length, type);
    const differ = ours.findIndex((v, i) => v !== theirs[i]);
    assert.equal(differ, -1, `${type} value ${differ}: ${ours[differ]} != ${theirs[differ]}`);
  }
});
