import assert from "node:assert/strict";
import { parseQuant } from "./quant.ts";

Deno.test("parseQuant reads zero_point_linear_quantize entries as tract writes them", () => {
  const specs = parseQuant(
    '"input": zero_point_linear_quantize(zero_point = 128, scale = 0.007812500, bits = 8, ' +
      "signed = false, symmetric = false);\n" +
      '"output": zero_point_linear_quantize(zero_point = -128, scale = 0.0039, bits = 8, ' +
      "signed = true, symmetric = true);\n",
  );
  assert.deepEqual([...specs.entries()], [
    ["input", {
      kind: "zero_point_linear_quantize",
      zeroPoint: 128,
      scale: 0.0078125,
      bits: 8,
      signed: false,
      symmetric: false,
    }],
    ["output", {
      kind: "zero_point_linear_quantize",
      zeroPoint: -128,
      scale: 0.0039,
      bits: 8,
      signed: true,
      symmetric: true,
    }],
  ]);
});

Deno.test("parseQuant accepts arguments in any order, optional commas and no symmetric", () => {
  const specs = parseQuant(
    '# comment\n"v1": zero_point_linear_quantize(scale = 4.5 bits = 8 signed = false ' +
      "zero_point = 0); # trailing\n",
  );
  assert.deepEqual(specs.get("v1"), {
    kind: "zero_point_linear_quantize",
    zeroPoint: 0,
    scale: 4.5,
    bits: 8,
    signed: false,
    symmetric: null,
  });
});

Deno.test('parseQuant reads linear_quantize and i"…" names', () => {
  const specs = parseQuant(
    'i"layer.0/out": linear_quantize(max = 123.8, min = -0.5, bits = 8);\n' +
      "'single': linear_quantize(min = 0, max = 1e2, bits = 16);",
  );
  assert.deepEqual(specs.get("layer.0/out"), {
    kind: "linear_quantize",
    min: -0.5,
    max: 123.8,
    bits: 8,
  });
  assert.deepEqual(specs.get("single"), { kind: "linear_quantize", min: 0, max: 100, bits: 16 });
});

Deno.test("parseQuant returns an empty map for an empty file and lets a later entry win", () => {
  assert.equal(parseQuant("  # nothing\n").size, 0);
  const specs = parseQuant(
    '"x": linear_quantize(min = 0, max = 1, bits = 8);\n' +
      '"x": linear_quantize(min = 0, max = 2, bits = 8);',
  );
  assert.equal(specs.size, 1);
  assert.deepEqual(specs.get("x"), { kind: "linear_quantize", min: 0, max: 2, bits: 8 });
});

Deno.test("parseQuant rejects a missing argument with its position", () => {
  assert.throws(
    () =>
      parseQuant('\n"x": zero_point_linear_quantize(zero_point = 0, bits = 8, signed = false);'),
    {
      name: "SyntaxError",
      message:
        /^graph\.quant:2:6: Missing argument 'scale' in 'zero_point_linear_quantize' for 'x'$/,
    },
  );
});

Deno.test("parseQuant rejects unknown and duplicate arguments", () => {
  assert.throws(
    () => parseQuant('"x": linear_quantize(min = 0, max = 1, bits = 8, signed = true);'),
    {
      name: "SyntaxError",
      message:
        /^graph\.quant:1:50: Expected one of min, max, bits in 'linear_quantize' for 'x', found identifier 'signed'$/,
    },
  );
  assert.throws(() => parseQuant('"x": linear_quantize(min = 0, min = 1, max = 1, bits = 8);'), {
    name: "SyntaxError",
    message: /^graph\.quant:1:31: Duplicate argument 'min' in 'linear_quantize' for 'x'$/,
  });
  assert.throws(() => parseQuant('"x": linear_quantize(constructor = 1);'), {
    name: "SyntaxError",
    message: /Expected one of min, max, bits/,
  });
});

Deno.test("parseQuant rejects bad values and unknown operations", () => {
  assert.throws(() => parseQuant('"x": linear_quantize(min = 0, max = 1, bits = 8.5);'), {
    name: "SyntaxError",
    message: /^graph\.quant:1:47: Expected an integer for 'bits', found number '8\.5'$/,
  });
  assert.throws(
    () =>
      parseQuant(
        '"x": zero_point_linear_quantize(zero_point = 0, scale = 1, bits = 8, signed = maybe);',
      ),
    {
      name: "SyntaxError",
      message: /1:79: Expected true or false for 'signed', found identifier 'maybe'$/,
    },
  );
  assert.throws(() => parseQuant('"x": log_quantize(bits = 8);'), {
    name: "SyntaxError",
    message:
      /^graph\.quant:1:6: Expected 'zero_point_linear_quantize' or 'linear_quantize' for 'x', found identifier 'log_quantize'$/,
  });
  assert.throws(() => parseQuant('"x": linear_quantize(min = 0, max = 1, bits = 8)'), {
    name: "SyntaxError",
    message: /Expected ';' after the entry for 'x', found end of input$/,
  });
});

Deno.test("parseQuant rejects unquoted names and unterminated strings", () => {
  assert.throws(() => parseQuant("x: linear_quantize(min = 0, max = 1, bits = 8);"), {
    name: "SyntaxError",
    message: /^graph\.quant:1:1: Expected a quoted tensor name, found identifier 'x'$/,
  });
  assert.throws(() => parseQuant('"x: linear_quantize(min = 0);'), {
    name: "SyntaxError",
    message: /^graph\.quant:1:1: Unterminated string literal/,
  });
  assert.throws(
    () => parseQuant("@", "m/graph.quant"),
    /^SyntaxError: m\/graph\.quant:1:1: Unexpected character '@'$/,
  );
});
