import assert from "node:assert/strict";
import { concatBytes } from "../storage/bytes.ts";
import { tensor } from "../tensor/tensor.ts";
import { quantizeQ40 } from "./q40.ts";
import { decodeTensor } from "./tensor_decode.ts";
import { encodeTensor } from "./tensor_encode.ts";
import {
  readTensorFile,
  readTensorHeader,
  TENSOR_HEADER_BYTES,
  type TensorFile,
  writeTensorFile,
} from "./tensor_file.ts";

function header(fields: {
  dataLength: number;
  dims: number[];
  bits: number;
  code: number;
  vendor?: number;
}): Uint8Array {
  const out = new Uint8Array(TENSOR_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set([0x4e, 0xef, 1, 0]);
  view.setUint32(4, fields.dataLength, true);
  view.setUint32(8, fields.dims.length, true);
  fields.dims.forEach((d, i) => view.setUint32(12 + 4 * i, d, true));
  view.setUint32(44, fields.bits, true);
  view.setUint16(48, fields.code, true);
  view.setUint16(50, fields.vendor ?? 0, true);
  return out;
}

function roundTrip(file: TensorFile): TensorFile {
  const bytes = writeTensorFile(file);
  const again = readTensorFile(bytes, "round-trip.dat");
  assert.deepEqual(writeTensorFile(again), bytes);
  return again;
}

Deno.test("readTensorHeader rejects a truncated header", () => {
  const bytes = header({ dataLength: 4, dims: [1], bits: 32, code: 0 }).subarray(0, 57);
  assert.throws(
    () => readTensorHeader(bytes, "w.dat"),
    (e: unknown) =>
      e instanceof RangeError && e.message === "w.dat: truncated header: 57 bytes, expected 128",
  );
});

Deno.test("readTensorHeader rejects a bad magic", () => {
  const bytes = header({ dataLength: 4, dims: [1], bits: 32, code: 0 });
  bytes[1] = 0xee;
  assert.throws(
    () => readTensorHeader(bytes, "w.dat"),
    (e: unknown) => e instanceof TypeError && /^w\.dat: bad magic 4e ee/.test(e.message),
  );
});

Deno.test("readTensorHeader rejects an unsupported version", () => {
  const bytes = header({ dataLength: 4, dims: [1], bits: 32, code: 0 });
  bytes[2] = 2;
  assert.throws(() => readTensorHeader(bytes, "w.dat"), /w\.dat: unsupported version 2\.0/);
});

Deno.test("readTensorHeader rejects rank 9", () => {
  const bytes = header({ dataLength: 4, dims: [1], bits: 32, code: 0 });
  new DataView(bytes.buffer).setUint32(8, 9, true);
  assert.throws(
    () => readTensorHeader(bytes, "w.dat"),
    (e: unknown) => e instanceof RangeError && e.message === "w.dat: rank 9 exceeds 8",
  );
});

Deno.test("readTensorHeader rejects dims set beyond the rank", () => {
  const bytes = header({ dataLength: 4, dims: [1, 0, 7], bits: 32, code: 0 });
  new DataView(bytes.buffer).setUint32(8, 1, true);
  assert.throws(() => readTensorHeader(bytes, "w.dat"), /w\.dat: dims\[2\] is 7 but rank is 1/);
});

Deno.test("readTensorHeader rejects an unknown item type", () => {
  const bytes = header({ dataLength: 4, dims: [1], bits: 32, code: 9 });
  assert.throws(
    () => readTensorHeader(bytes, "w.dat"),
    (e: unknown) =>
      e instanceof TypeError && e.message === "w.dat: unknown item type code 9 (vendor 0)",
  );
});

Deno.test("readTensorHeader rejects an unknown vendor and an unknown tract code", () => {
  assert.throws(
    () =>
      readTensorHeader(header({ dataLength: 4, dims: [1], bits: 32, code: 0, vendor: 7 }), "a.dat"),
    /a\.dat: unknown item type vendor 0x0007/,
  );
  assert.throws(
    () =>
      readTensorHeader(
        header({ dataLength: 18, dims: [1, 32], bits: -1 >>> 0, code: 0x3050, vendor: 0x5452 }),
        "b.dat",
      ),
    /b\.dat: unknown tract item type code 0x3050/,
  );
});

Deno.test("readTensorHeader rejects bits that do not fit the item type", () => {
  assert.throws(
    () => readTensorHeader(header({ dataLength: 3, dims: [1], bits: 24, code: 0 }), "w.dat"),
    /w\.dat: item type 0x0000 \(vendor 0x0000\): unsupported bits_per_item 24/,
  );
});

Deno.test("readTensorHeader rejects a data length that disagrees with dims and bits", () => {
  assert.throws(
    () => readTensorHeader(header({ dataLength: 20, dims: [2, 3], bits: 32, code: 0 }), "w.dat"),
    /w\.dat: data_length 20 does not match dims \[2, 3\] at 32 bits per item \(24 bytes\)/,
  );
  assert.throws(
    () => readTensorHeader(header({ dataLength: 3, dims: [9], bits: 1, code: 5 }), "m.dat"),
    /m\.dat: data_length 3 does not match dims \[9\] at 1 bit per item \(2 bytes\)/,
  );
});

Deno.test("readTensorHeader applies the block-quant rules", () => {
  const q40 = { bits: -1 >>> 0, code: 0x3040, vendor: 0x5452 };
  assert.throws(
    () => readTensorHeader(header({ ...q40, dataLength: 18, dims: [32] }), "r.dat"),
    /r\.dat: block-quant tensor has rank 1, expected >= 2/,
  );
  assert.throws(
    () => readTensorHeader(header({ ...q40, dataLength: 36, dims: [4, 16] }), "k.dat"),
    /k\.dat: block-quant dims \[4, 16\]: inner size 16 is not a multiple of 32/,
  );
  assert.throws(
    () => readTensorHeader(header({ ...q40, dataLength: 32, dims: [2, 32] }), "l.dat"),
    /l\.dat: data_length 32 does not match dims \[2, 32\] \(36 bytes of q40 blocks\)/,
  );
});

Deno.test("readTensorFile rejects a payload shorter than the header says", () => {
  const bytes = concatBytes([
    header({ dataLength: 24, dims: [2, 3], bits: 32, code: 0 }),
    new Uint8Array(20),
  ]);
  assert.throws(
    () => readTensorFile(bytes, "w.dat"),
    (e: unknown) =>
      e instanceof RangeError &&
      e.message === "w.dat: payload is 20 bytes, shorter than data_length 24",
  );
});

Deno.test("readTensorFile rejects bytes after the payload", () => {
  const bytes = concatBytes([
    header({ dataLength: 4, dims: [1], bits: 32, code: 0 }),
    new Uint8Array(8),
  ]);
  assert.throws(
    () => readTensorFile(bytes, "w.dat"),
    /payload is 8 bytes, longer than data_length 4/,
  );
});

Deno.test("readTensorFile reads strings sequentially whatever data_length says", () => {
  const payload = Uint8Array.from([
    2,
    0,
    0,
    0,
    0x68,
    0x69,
    0,
    0,
    0,
    0,
    3,
    0,
    0,
    0,
    0xc3,
    0xa9,
    0x21,
  ]);
  const bytes = concatBytes([
    header({ dataLength: 72, dims: [3], bits: -1 >>> 0, code: 0x1000, vendor: 0x5452 }),
    payload,
  ]);
  const file = readTensorFile(bytes, "s.dat");
  assert.deepEqual(writeTensorFile(file), bytes);
  assert.deepEqual(decodeTensor(file).data, ["hi", "", "é!"]);
  assert.throws(
    () => readTensorFile(bytes.subarray(0, bytes.length - 1), "s.dat"),
    /s\.dat: string item 2 of 3: 3 bytes past the end/,
  );
});

Deno.test("decodeTensor treats codes 1|2 as unsigned and 3|4 as signed", () => {
  const payload = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  for (const code of [3, 4]) {
    const file = readTensorFile(
      concatBytes([header({ dataLength: 8, dims: [1], bits: 64, code }), payload]),
      "i.dat",
    );
    assert.equal(file.header.dtype, "i64");
    assert.deepEqual([...decodeTensor(file).data as Float64Array], [-1]);
  }
  for (const code of [1, 2]) {
    const file = readTensorFile(
      concatBytes([header({ dataLength: 2, dims: [1], bits: 16, code }), payload.subarray(0, 2)]),
      "u.dat",
    );
    assert.equal(file.header.dtype, "u16");
    assert.deepEqual([...decodeTensor(file).data as Float64Array], [65535]);
  }
});

Deno.test("decodeTensor unpacks 1-bit bools MSB-first", () => {
  const file = readTensorFile(
    concatBytes([
      header({ dataLength: 2, dims: [10], bits: 1, code: 5 }),
      Uint8Array.from([0b10100000, 0b01000000]),
    ]),
    "b.dat",
  );
  assert.deepEqual([...decodeTensor(file).data as Uint8Array], [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
});

Deno.test("decodeTensor dequantizes Q8_1 blocks to f32", () => {
  const payload = new Uint8Array(36);
  payload.set([0x00, 0x38, 0, 0]); // d = 0.5
  payload[4] = 4;
  payload[5] = 0xfe; // -2
  for (const code of [0x3080, 0x3081]) {
    const file = readTensorFile(
      concatBytes([
        header({ dataLength: 36, dims: [1, 32], bits: -1 >>> 0, code, vendor: 0x5452 }),
        payload,
      ]),
      "q8.dat",
    );
    const t = decodeTensor(file);
    assert.equal(t.dtype, "f32");
    assert.deepEqual([...(t.data as Float32Array).subarray(0, 3)], [2, -1, 0]);
  }
});

Deno.test("decodeTensor takes the logical shape of a block-quant tensor from the caller", () => {
  const blocks = quantizeQ40(Float32Array.from({ length: 128 }, (_, i) => i / 10));
  const file = encodeTensor(tensor("q40", [4, 32], blocks));
  assert.deepEqual(decodeTensor(file, [2, 2, 32]).shape, [2, 2, 32]);
  assert.throws(() => decodeTensor(file, [3, 32]), /cannot take the shape \[3, 32\]/);
});

Deno.test("encodeTensor round-trips every item type through writeTensorFile and readTensorFile", () => {
  const cases = [
    tensor("f32", [2, 2], Float32Array.from([1.5, -2, 0, 3e9])),
    tensor("f16", [3], Float32Array.from([1, -0.5, 65504])),
    tensor("f64", [], Float64Array.from([1e-5])),
    tensor("i64", [3], Float64Array.from([-1, 2 ** 40, 0])),
    tensor("i8", [2], Float64Array.from([-128, 127])),
    tensor("u8", [2], Float64Array.from([0, 255])),
    tensor("u32", [1], Float64Array.from([4e9])),
    tensor("bool", [9], Uint8Array.from([1, 0, 0, 1, 1, 0, 0, 0, 1])),
    tensor("string", [2], ["a", "ü"]),
    tensor("q40", [2, 32], quantizeQ40(Float32Array.from({ length: 64 }, (_, i) => i - 30))),
  ];
  for (const t of cases) {
    const back = decodeTensor(roundTrip(encodeTensor(t)));
    assert.equal(back.dtype, t.dtype);
    assert.deepEqual(back.shape, t.shape);
    assert.deepEqual(back.data, t.data);
  }
  const bool8 = encodeTensor(tensor("bool", [2], Uint8Array.from([1, 0])), { boolBits: 8 });
  assert.equal(bool8.header.bitsPerItem, 8);
  assert.deepEqual(decodeTensor(roundTrip(bool8)).data, Uint8Array.from([1, 0]));
  const tdim = encodeTensor(tensor("tdim", [1], Float64Array.from([7])));
  assert.equal(tdim.header.dtype, "i64");
  assert.equal(tdim.header.itemType, 4);
});

Deno.test("encodeTensor writes Q4_0 with tract's vendor code and the full logical shape", () => {
  const file = encodeTensor(tensor("q40", [2, 2, 32], new Uint8Array(4 * 18)));
  assert.deepEqual(
    [file.header.vendor, file.header.itemType, file.header.bitsPerItem, file.header.dataLength],
    [0x5452, 0x3040, 0xffffffff, 72],
  );
  assert.deepEqual(file.header.dims, [2, 2, 32]);
  assert.throws(() => encodeTensor(tensor("q40", [64], new Uint8Array(36))), /need rank >= 2/);
});

Deno.test("decodeTensor reads floats from a payload at any byte offset", () => {
  const bytes = writeTensorFile(encodeTensor(tensor("f32", [3], Float32Array.from([1, -2.5, 3]))));
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const t = decodeTensor(readTensorFile(shifted.subarray(1), "odd.dat"));
  assert.deepEqual([...(t.data as Float32Array)], [1, -2.5, 3]);
  const half = writeTensorFile(encodeTensor(tensor("f16", [2], Float32Array.from([0.5, -4]))));
  const shiftedHalf = new Uint8Array(half.length + 3);
  shiftedHalf.set(half, 3);
  const h = decodeTensor(readTensorFile(shiftedHalf.subarray(3), "odd16.dat"));
  assert.deepEqual([...(h.data as Float32Array)], [0.5, -4]);
});
