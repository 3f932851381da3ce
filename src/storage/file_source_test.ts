import assert from "node:assert/strict";
import { openFileSource } from "./file_source.ts";
import { memorySource } from "./memory_source.ts";
import { BounceReader } from "./_bounce.ts";

const DATA = Uint8Array.from({ length: 3000 }, (_, i) => (i * 13) & 0xff);

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("openFileSource reads ranges, concurrently, and streams", async () => {
  const path = await Deno.makeTempFile();
  await Deno.writeFile(path, DATA);
  const source = await openFileSource(path);
  try {
    assert.equal(await source.size(), 3000);
    const [a, b] = await Promise.all([source.read(0, 10), source.read(2990, 10)]);
    assert.deepEqual(a, DATA.slice(0, 10));
    assert.deepEqual(b, DATA.slice(2990));
    assert.deepEqual(await collect(source.stream(100, 2000)), DATA.slice(100, 2100));
    await assert.rejects(() => source.read(2999, 2), /past the end \(size 3000\)/);
  } finally {
    await source.close();
    await Deno.remove(path);
  }
});

Deno.test("openFileSource fails on a missing file", async () => {
  await assert.rejects(() => openFileSource("/nonexistent/rill.tar"), Deno.errors.NotFound);
});

Deno.test("memorySource reads copies of ranges and streams them", async () => {
  const source = memorySource(DATA, "mem");
  assert.equal(source.name, "mem");
  const part = await source.read(5, 5);
  part[0] = 0;
  assert.deepEqual(await source.read(5, 5), DATA.slice(5, 10));
  assert.deepEqual(await collect(source.stream(0, 3000)), DATA);
  await assert.rejects(() => source.read(-1, 2), /invalid range/);
  await source.close();
});

Deno.test("openFileSource streams into a BYOB reader's buffer, interleaved with reads", async () => {
  const path = await Deno.makeTempFile();
  await Deno.writeFile(path, DATA);
  const source = await openFileSource(path);
  const reader = new BounceReader(source.stream(100, 2000), 512);
  try {
    assert.ok(reader.reused);
    const got: number[] = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      assert.ok(value.length <= 512);
      got.push(...value);
      assert.deepEqual(await source.read(0, 10), DATA.slice(0, 10));
    }
    assert.deepEqual(Uint8Array.from(got), DATA.slice(100, 2100));
  } finally {
    await reader.cancel();
    await source.close();
    await Deno.remove(path);
  }
});
