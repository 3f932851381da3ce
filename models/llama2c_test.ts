import assert from "node:assert/strict";
import { llama2cConfig, parseLlama2cHeader } from "./llama2c.ts";

function header(values: number[]): Uint8Array {
  const out = new Uint8Array(28);
  values.forEach((v, i) => new DataView(out.buffer).setInt32(4 * i, v, true));
  return out;
}

// stories260K: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, vocab 512, seq 512.
const STORIES = [64, 172, 5, 8, 4, 512, 512];
const STORIES_BYTES = 1_056_540;

Deno.test("parseLlama2cHeader reads stories260K's header and maps it to an HF config", () => {
  const h = parseLlama2cHeader(header(STORIES), { name: "s.bin", size: STORIES_BYTES });
  assert.equal(h.sharedClassifier, true);
  const c = llama2cConfig(h);
  assert.equal(c.headDim, 8);
  assert.equal(c.rmsNormEps, 1e-5);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.maxPositions, 512);
  assert.equal(c.tieWordEmbeddings, true);
});

Deno.test("parseLlama2cHeader rejects a size that does not match the header", () => {
  assert.throws(
    () => parseLlama2cHeader(header(STORIES), { name: "s.bin", size: STORIES_BYTES - 4 }),
    /s\.bin: truncated llama2\.c checkpoint: the header \(dim 64, 5 layers, vocab 512\) needs 1056540 bytes, the file has 1056536/,
  );
  // A negative vocab means a separate classifier: 512*64 more floats.
  assert.throws(
    () =>
      parseLlama2cHeader(header([64, 172, 5, 8, 4, -512, 512]), {
        name: "s.bin",
        size: STORIES_BYTES,
      }),
    /needs 1187612 bytes/,
  );
  assert.throws(
    () =>
      parseLlama2cHeader(header([64, 172, 5, 8, 3, 512, 512]), {
        name: "s.bin",
        size: STORIES_BYTES,
      }),
    /inconsistent llama2\.c header/,
  );
  assert.throws(
    () => parseLlama2cHeader(new Uint8Array(10), { name: "s.bin", size: 10 }),
    /no 28-byte header/,
  );
});
