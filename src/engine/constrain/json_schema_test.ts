import assert from "node:assert/strict";
import { Automaton } from "./automaton.ts";
import { compileJsonSchema, jsonObjectGrammar } from "./json_schema.ts";

function machine(schema: unknown): Automaton {
  return new Automaton(compileJsonSchema(schema));
}

function check(schema: unknown, accept: readonly string[], reject: readonly string[]): void {
  const m = machine(schema);
  for (const text of accept) assert.ok(m.matches(text), `should accept ${text}`);
  for (const text of reject) assert.ok(!m.matches(text), `should reject ${text}`);
}

Deno.test("compileJsonSchema: objects keep property order, required and optional members", () => {
  check(
    {
      type: "object",
      properties: { name: { type: "string" }, age: { type: "integer" }, ok: { type: "boolean" } },
      required: ["name"],
      additionalProperties: false,
    },
    [
      '{"name":"x"}',
      '{"name": "x", "age": 3}',
      '{"name":"","ok":true}',
      '{"name":"a","age":-12,"ok":false}',
    ],
    [
      "{}",
      '{"age":3,"name":"x"}',
      '{"name":"x",}',
      '{"name":"x","other":1}',
      '{"name":"x","age":1.5}',
      '{ "name":"x"}',
      '{"name":"x"} ',
    ],
  );
});

Deno.test("compileJsonSchema: strings escape, hold UTF-8 and respect their lengths", () => {
  check(
    { type: "string" },
    ['""', '"a\\"b"', '"\\u00e9\\n"', '"héllo ✓ 😀"'],
    ['"a', '"a"b"', '"\\x"', '"\\ud800"', '"\u0001"', "'a'"],
  );
  check({ type: "string", minLength: 2, maxLength: 3 }, ['"ab"', '"abc"', '"é✓"'], [
    '"a"',
    '"abcd"',
  ]);
  const m = machine({ type: "string" });
  // A lone continuation byte is not UTF-8.
  assert.equal(m.walk(m.start, Uint8Array.of(0x22, 0x80)), -1);
});

Deno.test("compileJsonSchema: numbers, integer bounds and integral number bounds", () => {
  check({ type: "number" }, ["0", "-1.5", "12.25", "100"], ["01", "1.", ".5", "1e5", "+1", "-"]);
  check({ type: "integer" }, ["0", "-7", "123456789012345"], ["1.0", "1234567890123456", "-0.5"]);
  check({ type: "integer", minimum: 10, maximum: 120 }, ["10", "99", "100", "120"], [
    "9",
    "121",
    "200",
    "-10",
    "010",
  ]);
  check({ type: "integer", exclusiveMinimum: -3, maximum: -1 }, ["-2", "-1"], ["-3", "0", "1"]);
  check({ type: "integer", minimum: 0 }, ["0", "5", "99999"], ["-1"]);
  check({ type: "number", minimum: 0, maximum: 1 }, ["0", "0.5", "1", "1.0", "0.999"], [
    "1.5",
    "-0.5",
    "2",
  ]);
  check({ type: "number", minimum: -2, maximum: -1 }, ["-1", "-1.5", "-2", "-2.00"], [
    "-2.5",
    "-0.5",
    "0",
  ]);
});

Deno.test("compileJsonSchema: arrays with item counts", () => {
  check({ type: "array", items: { type: "integer" }, minItems: 1, maxItems: 3 }, [
    "[1]",
    "[1,2]",
    "[1, 2, 3]",
  ], ["[]", "[1,2,3,4]", "[1,]", '["a"]']);
  check({ type: "array", items: { type: "null" } }, ["[]", "[null, null]"], ["[null null]"]);
  check({ type: "array" }, ["[]", '[1, "a", {"b": [null]}]'], ["[1"]);
});

Deno.test("compileJsonSchema: enum, const, anyOf and type lists", () => {
  check({ enum: ["red", "green", 3, null] }, ['"red"', '"green"', "3", "null"], [
    '"blue"',
    '"re"',
    "4",
  ]);
  check({ const: { a: [1] } }, ['{"a":[1]}'], ['{"a": [1]}', '{"a":[2]}']);
  check(
    { anyOf: [{ type: "string", format: "date" }, { type: "integer", minimum: 0, maximum: 9 }] },
    ['"2024-02-28"', "7"],
    ['"2024-02-30"', "10", '"2024-13-01"'],
  );
  check({ type: ["string", "null"] }, ['"x"', "null"], ["1", "true"]);
});

Deno.test("compileJsonSchema: $defs and recursive $ref", () => {
  const tree = {
    $defs: {
      node: {
        type: "object",
        properties: {
          v: { type: "integer" },
          kids: { type: "array", items: { $ref: "#/$defs/node" } },
        },
        required: ["v", "kids"],
        additionalProperties: false,
      },
    },
    $ref: "#/$defs/node",
  };
  check(tree, ['{"v":1,"kids":[]}', '{"v":1,"kids":[{"v":2,"kids":[{"v":3,"kids":[]}]}]}'], [
    '{"v":1}',
    '{"v":1,"kids":[{}]}',
  ]);
});

Deno.test("compileJsonSchema: formats", () => {
  check({ type: "string", format: "date-time" }, [
    '"2024-01-31T23:59:59Z"',
    '"1999-04-30T00:00:00.123Z"',
  ], ['"2024-04-31T00:00:00Z"', '"2024-01-01T24:00:00Z"']);
  check({ type: "string", format: "uuid" }, ['"123e4567-e89b-12d3-a456-426614174000"'], [
    '"123e4567e89b12d3a456426614174000"',
  ]);
  check({ type: "string", format: "email" }, [
    '"a.b@example.com"'.replace("a.b", "ab"),
    '"x1@mail.example.org"',
  ], ['"@example.com"', '"a@b"']);
  check({ type: "string", format: "time" }, ['"08:30:00Z"'], ['"8:30:00Z"']);
});

Deno.test("jsonObjectGrammar accepts any object and nothing else", () => {
  const m = new Automaton(jsonObjectGrammar());
  for (const t of ["{}", '{"a": [1, {"b": null}], "c": "d"}']) assert.ok(m.matches(t), t);
  for (const t of ["[]", '"x"', "1", '{"a"}', "{} {}"]) assert.ok(!m.matches(t), t);
});

Deno.test("compileJsonSchema: a pattern is matched whole, its quotes, backslashes and controls escaped", () => {
  check(
    { type: "string", pattern: '^[a"\\\\\n]{1,2}$' },
    ['"a"', '"\\""', '"\\\\a"', '"\\n"', '"a\\""'],
    ['""', '"""', '"\n"', '"\\"', '"aaa"', '"\\u0061"'],
  );
  check(
    { properties: { code: { pattern: "[A-Z]{2}-\\d+" } }, required: ["code"] },
    ['{"code":"AB-12"}'],
    ['{"code":"ab-12"}', '{"code":"AB-"}', '{"code":"xAB-1"}'],
  );
});

Deno.test("compileJsonSchema names the unsupported keyword and where it is", () => {
  const throwsWith = (schema: unknown, pattern: RegExp) =>
    assert.throws(
      () => compileJsonSchema(schema, { where: "response_format.json_schema.schema" }),
      (e: Error) => {
        assert.ok(e instanceof TypeError, String(e));
        assert.match(e.message, pattern);
        return true;
      },
    );
  throwsWith(
    { type: "object", properties: { a: { type: "string", pattern: "^x(?=y)" } } },
    /^response_format\.json_schema\.schema #\/properties\/a\/pattern: lookaround/,
  );
  throwsWith(
    { type: "string", pattern: "^x$", maxLength: 3 },
    /'maxLength' beside pattern at response_format\.json_schema\.schema #\/maxLength/,
  );
  throwsWith({ oneOf: [{ type: "string" }] }, /'oneOf'/);
  throwsWith({ allOf: [] }, /'allOf'/);
  throwsWith({ type: "array", prefixItems: [] }, /'prefixItems'/);
  throwsWith({ type: "string", format: "hostname" }, /format "hostname"/);
  throwsWith({ type: "number", multipleOf: 2 }, /'multipleOf'/);
  throwsWith({ type: "number", minimum: 0.5 }, /'minimum' with a fractional bound/);
  throwsWith(
    { type: "object", additionalProperties: { type: "string" } },
    /'additionalProperties'/,
  );
  throwsWith({ $ref: "#/$defs/missing" }, /points nowhere/);
  throwsWith({ type: "object", required: ["x"], properties: {} }, /names 'x'/);
  throwsWith({ type: "string", minimum: 3 }, /'minimum' for type string/);
  throwsWith({ type: "integer", enum: ["a"] }, /enum\/0 is not of the schema's type/);
});

Deno.test("compileJsonSchema refuses a schema with no finite document", () => {
  const endless = {
    $defs: { a: { type: "object", properties: { a: { $ref: "#/$defs/a" } }, required: ["a"] } },
    $ref: "#/$defs/a",
  };
  assert.throws(() => compileJsonSchema(endless), RangeError);
});
