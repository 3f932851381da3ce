import assert from "node:assert/strict";
import { readNpy, readNpz } from "./npz.ts";

const CASES = new URL("../../../shared/fixtures/tract-nnef-cases/", import.meta.url);

/** An npy v1 file: magic, version, padded header dict, then `data`. */
function npy(descr: string, shape: string, data: Uint8Array, major = 1): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const prefix = major === 1 ? 10 : 12;
  while ((prefix + header.length + 1) % 64 !== 0) header += " ";
  header += "\n";
  const out = new Uint8Array(prefix + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(new TextEncoder().encode(header), prefix);
  out.set(data, prefix + header.length);
  return out;
}

/** A zip of stored (method 0) members, with its central directory. */
function storedZip(members: [string, Uint8Array][]): Uint8Array {
  const parts: number[] = [];
  const central: number[] = [];
  const le = (n: number, width: number) =>
    Array.from({ length: width }, (_, i) => (n >> (8 * i)) & 0xff);
  for (const [name, data] of members) {
    const nameBytes = [...new TextEncoder().encode(name)];
    const offset = parts.length;
    const sizes = [...le(0, 4), ...le(data.length, 4), ...le(data.length, 4)];
    parts.push(...le(0x04034b50, 4), ...le(20, 2), ...le(0, 2), ...le(0, 2), ...le(0, 4), ...sizes);
    parts.push(...le(nameBytes.length, 2), ...le(0, 2), ...nameBytes, ...data);
    central.push(...le(0x02014b50, 4), ...le(20, 2), ...le(20, 2), ...le(0, 2), ...le(0, 2));
    central.push(...le(0, 4), ...sizes, ...le(nameBytes.length, 2), ...le(0, 2), ...le(0, 2));
    central.push(...le(0, 2), ...le(0, 2), ...le(0, 4), ...le(offset, 4), ...nameBytes);
  }
  const cdOffset = parts.length;
  parts.push(...central, ...le(0x06054b50, 4), ...le(0, 4), ...le(members.length, 2));
  parts.push(...le(members.length, 2), ...le(central.length, 4), ...le(cdOffset, 4), ...le(0, 2));
  return Uint8Array.from(parts);
}

Deno.test("readNpy reads little- and big-endian numbers, bools, f16 and v2 headers", () => {
  const f32 = readNpy(
    npy("<f4", "(2, 2)", new Uint8Array(new Float32Array([1, 2.5, -3, 4]).buffer)),
  );
  assert.equal(f32.dtype, "f32");
  assert.deepEqual(f32.shape, [2, 2]);
  assert.deepEqual([...f32.data as Float32Array], [1, 2.5, -3, 4]);
  const i64 = readNpy(
    npy("<i8", "(3,)", new Uint8Array(new BigInt64Array([-5n, 0n, 7n]).buffer), 2),
  );
  assert.equal(i64.dtype, "i64");
  assert.deepEqual([...i64.data as Float64Array], [-5, 0, 7]);
  const big = readNpy(npy(">i2", "(2,)", Uint8Array.of(0xff, 0xfe, 0x01, 0x00)));
  assert.deepEqual([...big.data as Float64Array], [-2, 256]);
  const bools = readNpy(npy("|b1", "(3,)", Uint8Array.of(1, 0, 1)));
  assert.equal(bools.dtype, "bool");
  assert.deepEqual([...bools.data as Uint8Array], [1, 0, 1]);
  const half = readNpy(npy("<f2", "()", Uint8Array.of(0x00, 0x3c)));
  assert.equal(half.dtype, "f16");
  assert.deepEqual(half.shape, []);
  assert.deepEqual([...half.data as Float32Array], [1]);
});

Deno.test("readNpy rejects bad magic, unsupported dtypes, Fortran order and truncation", () => {
  assert.throws(() => readNpy(new Uint8Array(20), "x.npy"), {
    name: "SyntaxError",
    message: /x\.npy/,
  });
  assert.throws(() => readNpy(npy("<c8", "(1,)", new Uint8Array(8)), "c.npy"), {
    name: "TypeError",
    message: "Unsupported npy dtype '<c8' in c.npy",
  });
  const fortran = npy("<f4", "(1,)", new Uint8Array(4));
  new TextEncoder().encodeInto("'fortran_order': True, ", fortran.subarray(27));
  assert.throws(() => readNpy(fortran, "f.npy"), { name: "TypeError", message: /Fortran/ });
  assert.throws(() => readNpy(npy("<f4", "(4,)", new Uint8Array(8)), "t.npy"), {
    name: "RangeError",
    message: /Truncated npy data in t\.npy/,
  });
});

Deno.test("readNpz reads a stored zip built here", async () => {
  const zip = storedZip([
    ["a.npy", npy("<i4", "(2,)", new Uint8Array(new Int32Array([3, -4]).buffer))],
    ["b.npy", npy("|u1", "(1,)", Uint8Array.of(200))],
  ]);
  const arrays = await readNpz(zip, "built.npz");
  assert.deepEqual([...arrays.keys()], ["a", "b"]);
  assert.deepEqual([...arrays.get("a")!.data as Float64Array], [3, -4]);
  assert.equal(arrays.get("b")!.dtype, "u8");
  await assert.rejects(readNpz(zip.subarray(0, zip.length - 30), "cut.npz"), {
    name: "SyntaxError",
    message: /cut\.npz/,
  });
});

Deno.test("readNpz reads tract's stored and deflated bundles", async () => {
  const sdpa = await readNpz(await Deno.readFile(new URL("sdpa/simple-causal-f32/io.npz", CASES)));
  assert.deepEqual([...sdpa.keys()], ["input_0", "output_0"]);
  assert.deepEqual(sdpa.get("input_0")!.shape, [1, 2, 3]);
  assert.equal((sdpa.get("input_0")!.data as Float32Array)[0], Math.fround(0.8257339596748352));
  const deflated = await readNpz(
    await Deno.readFile(new URL("qwen35-recurrent/causal-conv1d-update/io.npz", CASES)),
  );
  assert.deepEqual([...deflated.get("weight")!.data as Float32Array].slice(0, 4), [
    0.25,
    -0.5,
    0.75,
    1,
  ]);
  assert.deepEqual(deflated.get("final_state")!.shape, [4, 4]);
  const bools = await readNpz(await Deno.readFile(new URL("test_all_reduce/io.npz", CASES)));
  assert.equal(bools.get("output_0")!.dtype, "bool");
  assert.deepEqual([...bools.get("output_0")!.data as Uint8Array], [0, 1, 0]);
});
