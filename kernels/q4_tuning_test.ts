import assert from "node:assert/strict";
import { loadKernels } from "./mod.ts";
import { tileSpeedups, TUNE_MIN_BYTES, tuneQ4 } from "./q4_tuning.ts";

/** Q4_0 blocks with normal f16 scales (0.01) and pseudo-random codes. */
function fillQ4(bytes: Uint8Array, seed: number): void {
  let s = seed >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bytes[i] = s >>> 24;
  }
  for (let b = 0; b < bytes.length; b += 18) [bytes[b], bytes[b + 1]] = [0x1f, 0x21];
}

Deno.test("tuneQ4 chooses streams, sums and where tiles start (four tokens, then fewer while they win) by timing both over weights that leave the cache, and leaves a small model alone", async () => {
  using kernels = await loadKernels({ threads: 1 });
  const [n, k] = [1024, 1024];
  const bytes = n * (k / 32) * 18;
  const small = kernels.allocWeights(bytes);
  assert.equal(tuneQ4(kernels, [{ offset: small.offset, n, k }]), null);
  assert.equal(kernels.q4Streams, 1);
  assert.equal(kernels.q4I32Sums, false);
  assert.equal(kernels.q4TileFrom, 8);
  const count = Math.ceil(TUNE_MIN_BYTES / bytes);
  const matrices = Array.from({ length: count }, (_, i) => {
    const slot = kernels.allocWeights(bytes);
    fillQ4(slot.bytes, 80 + i);
    kernels.interleaveQ4_0Rows8(slot.offset, n, k);
    return { offset: slot.offset, n, k };
  });
  const arenaTop = kernels.mark();
  const choice = tuneQ4(kernels, matrices);
  assert.equal(kernels.mark(), arenaTop, "the timing's buffers go back to the arena");
  if (kernels.variant !== "relaxed") return assert.equal(choice, null);
  assert.ok(choice && [1, kernels.maxQ4Streams].includes(choice.streams));
  assert.equal(kernels.q4Streams, choice.streams);
  assert.equal(kernels.q4I32Sums, choice.i32Sums);
  assert.ok([2, 3, 4, 8].includes(choice.tileFrom));
  assert.equal(kernels.q4TileFrom, choice.tileFrom);
  // Fewer tokens are timed only while the tiles win: at three once they won at four, at two
  // once they won at three.
  const timedFewer = { 8: 0, 4: 1, 3: 2, 2: 2 }[choice.tileFrom as 2 | 3 | 4 | 8];
  assert.equal(choice.fewerTileSpeedups.length, timedFewer);
  assert.deepEqual(
    tileSpeedups(choice).map((s) => s.tokens),
    [4, 3, 2].slice(0, 1 + timedFewer),
  );
  assert.equal(choice.bytes, count * bytes);
  const speedups = [choice.streamsSpeedup, choice.i32SumsSpeedup, choice.tileFromSpeedup];
  for (const speedup of [...speedups, ...choice.fewerTileSpeedups]) {
    assert.ok(speedup > 0 && Number.isFinite(speedup));
  }
});
