import assert from "node:assert/strict";
import { openArchive } from "../src/nnef/archive.ts";
import { dequantizeQ40, quantizeQ40 } from "../src/nnef/q40.ts";
import { decodeTensor } from "../src/nnef/tensor_decode.ts";
import { readTensorFile, writeTensorFile } from "../src/nnef/tensor_file.ts";

const fixtures = new URL("../../shared/fixtures/", import.meta.url).pathname;

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else yield path;
  }
}

async function fixtureFiles(test: (name: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const dir of ["tract-nnef-cases", "stories260K/nnef"]) {
    for await (const path of walk(`${fixtures}${dir}`)) if (test(path)) out.push(path);
  }
  return out.sort();
}

function checkRoundTrip(bytes: Uint8Array, name: string): void {
  const file = readTensorFile(bytes, name);
  assert.deepEqual(writeTensorFile(file), bytes, `${name} is not rewritten byte for byte`);
  const t = decodeTensor(file);
  assert.equal(t.dtype, file.header.dtype, name);
}

Deno.test("every loose .dat fixture reads and is rewritten byte for byte", async () => {
  const paths = await fixtureFiles((p) => p.endsWith(".dat"));
  assert.ok(paths.length >= 10, `${paths.length} loose .dat files`);
  for (const path of paths) checkRoundTrip(await Deno.readFile(path), path);
});

Deno.test("every .dat inside the fixture archives reads and is rewritten byte for byte", async () => {
  const archives = await fixtureFiles((p) => /\.nnef\.(tgz|tar)$/.test(p));
  assert.ok(archives.length >= 20, `${archives.length} archives`);
  let count = 0;
  for (const path of archives) {
    const archive = await openArchive(path);
    try {
      for (const m of archive.members()) {
        if (!m.name.endsWith(".dat")) continue;
        checkRoundTrip(await archive.read(m.name), `${path}:${m.name}`);
        count++;
      }
    } finally {
      await archive.close();
    }
  }
  assert.ok(count > 250, `${count} .dat members`);
});

Deno.test("legacy Q4_0 fixture decodes to GGML blocks with the ramp of nnef-format.md §2.5", async () => {
  const path = `${fixtures}tract-nnef-cases/q40_linear_followed_slice/linear__var0_q4_0.dat`;
  const file = readTensorFile(await Deno.readFile(path), path);
  assert.equal(file.header.layout, "q40_legacy");
  const t = decodeTensor(file, [16, 96]);
  assert.equal(t.dtype, "q40");
  const values = dequantizeQ40(t.data as Uint8Array, 16 * 96); // (16 * 96,)
  const codes = [
    8,
    8,
    7,
    7,
    7,
    7,
    6,
    6,
    6,
    6,
    5,
    5,
    5,
    5,
    4,
    4,
    4,
    4,
    3,
    3,
    3,
    3,
    2,
    2,
    2,
    2,
    1,
    1,
    1,
    1,
    0,
    0,
  ];
  assert.deepEqual([...values.subarray(0, 32)], codes.map((q) => (q - 8) * -3.875));
});

Deno.test("quantizeQ40 with the torch_to_nnef rule reproduces every stories260K Q4_0 weight byte for byte", async () => {
  const q40 = await openArchive(`${fixtures}stories260K/nnef/stories260K_q40.nnef.tgz`);
  const f32 = await openArchive(`${fixtures}stories260K/nnef/stories260K_f32.nnef.tgz`);
  try {
    let count = 0;
    for (const m of q40.members()) {
      if (!m.name.endsWith(".dat")) continue;
      const q = decodeTensor(readTensorFile(await q40.read(m.name), m.name));
      if (q.dtype !== "q40") continue;
      const w = decodeTensor(readTensorFile(await f32.read(m.name), m.name));
      assert.deepEqual(q.shape, w.shape, m.name);
      const values = w.data as Float32Array; // (rows, k)
      assert.deepEqual(quantizeQ40(values, { rule: "torch_to_nnef" }), q.data, m.name);
      count++;
    }
    assert.equal(count, 30);
  } finally {
    await q40.close();
    await f32.close();
  }
});
