import assert from "node:assert/strict";
import { gzipBomb } from "../../tests/_bombs.ts";
import { memorySource } from "../storage/memory_source.ts";
import { openArchive } from "./archive.ts";
import { gunzipStream, inflateBudget } from "./gzip.ts";
import { openModelStream } from "./model_stream.ts";
import { tarEntryHeader, writeTar } from "./tar.ts";

/** Peak RSS growth in bytes while `run` runs, sampled every few milliseconds. */
async function peakGrowth(run: () => Promise<unknown>): Promise<number> {
  const base = Deno.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, Deno.memoryUsage().rss)), 5);
  try {
    await run();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, Deno.memoryUsage().rss) - base;
}

const MB = 1 << 20;

Deno.test("inflateBudget allows 64 MiB plus 16 times the compressed size, unless told", () => {
  assert.equal(inflateBudget(1000), 64 * MB + 16_000);
  assert.equal(inflateBudget(1000, 5), 5);
});

Deno.test("gunzipStream stops with a RangeError once the bytes pass the budget", async () => {
  const bomb = gzipBomb(new Uint8Array(0), 2 ** 30);
  const stream = gunzipStream(memorySource(bomb, "bomb.gz"), bomb.length, 8 * MB);
  let got = 0;
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) got += chunk.length;
    })(),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message.startsWith(`bomb.gz: inflates to more than ${8 * MB} bytes, the budget`),
  );
  assert.ok(got <= 8 * MB);
});

Deno.test("a .tgz whose tar header declares GBs is refused by openArchive and the stream, in bounded memory", async () => {
  // A real tar header declaring 8 GiB, then 1 GiB of zeros: a 7 MB file.
  const bomb = gzipBomb(tarEntryHeader("w.dat", 2 ** 33), 2 ** 30);
  const growth = await peakGrowth(async () => {
    await assert.rejects(
      openArchive(memorySource(bomb, "bomb.tgz")),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message ===
          `bomb.tgz: inflates to more than ${inflateBudget(bomb.length)} bytes, the budget of ` +
            "this .tgz (the tar entry at offset 0 declares 8589934592 bytes); a gzip bomb? " +
            "RILL_MAX_INFLATED_BYTES raises the limit",
    );
    const stream = await openModelStream(memorySource(bomb, "bomb.tgz"));
    try {
      await assert.rejects(
        stream.read("graph.nnef"),
        (e: unknown) =>
          e instanceof RangeError &&
          e.message.startsWith(
            `bomb.tgz: the .tgz stream failed: inflates to more than ${
              inflateBudget(bomb.length)
            } bytes, the budget of this .tgz (the tar entry at offset 0 declares 8589934592 bytes)`,
          ),
      );
    } finally {
      await stream.close();
    }
  });
  assert.ok(growth < 768 * MB, `RSS grew by ${growth} bytes`);
});

Deno.test("a .tgz whose end is followed by GBs of zeros fails at the budget, opened or streamed", async () => {
  const tar = writeTar([{ name: "graph.nnef", data: new TextEncoder().encode("version 1.0;") }]);
  const bomb = gzipBomb(tar, 2 ** 30);
  await assert.rejects(openArchive(memorySource(bomb, "tail.tgz")), /tail\.tgz: inflates to more/);
  const stream = await openModelStream(memorySource(bomb, "tail.tgz"));
  try {
    assert.equal(new TextDecoder().decode(await stream.read("graph.nnef")), "version 1.0;");
    await assert.rejects(stream.ended, /tail\.tgz: the \.tgz stream failed: inflates to more than/);
  } finally {
    await stream.close();
  }
});

Deno.test("a .tgz with a flipped bit but no index fails at its CRC, after its members arrived", async () => {
  const data = new Uint8Array(1000).fill(1);
  const tar = writeTar([{ name: "w.dat", data }]);
  const gz = gzipBomb(tar, 0);
  // The deflate codes of the payload's bytes: flip one bit well inside them.
  gz[10 + 700]! ^= 0x10;
  const stream = await openModelStream(memorySource(gz, "flip.tgz"));
  try {
    const target = new Uint8Array(1000);
    await stream.load("w.dat", target).catch(() => {});
    await assert.rejects(stream.ended, /flip\.tgz: the \.tgz stream failed: /);
  } finally {
    await stream.close();
  }
});
