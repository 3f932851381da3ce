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
  throwsWith(
    { oneOf: [{ type: "string" }, { type: "string", maxLength: 3 }] },
    /oneOf at response_format\.json_schema\.schema #\/oneOf: alternatives 0 and 1 may both match/,
  );
  throwsWith({ allOf: [] }, /# has an allOf that is no non-empty array/);
  throwsWith({ allOf: [{ type: "string" }, { type: "number" }] }, /no common type in allOf/);
  throwsWith(
    { allOf: [{ properties: { a: {} }, additionalProperties: false }, { properties: { b: {} } }] },
    /additionalProperties in an allOf of several schemas/,
  );
  throwsWith({ type: "array", uniqueItems: true }, /'uniqueItems'/);
  throwsWith(
    { type: "array", prefixItems: [{}], additionalItems: false },
    /'additionalItems' beside prefixItems/,
  );
  throwsWith({ type: "string", format: "hostname" }, /format "hostname"/);
  throwsWith({ type: "number", multipleOf: 2 }, /'multipleOf'/);
  throwsWith({ type: "number", minimum: 0.5 }, /'minimum' with a fractional bound/);
  throwsWith(
    { type: "object", properties: { a: {} }, additionalProperties: { type: "string" } },
    /'additionalProperties' with a schema beside properties/,
  );
  throwsWith(
    { type: "object", properties: { a: {} }, minProperties: 1 },
    /'minProperties' beside properties/,
  );
  throwsWith(
    { type: "object", propertyNames: { type: "integer" } },
    /#\/propertyNames must be a schema of strings/,
  );
  throwsWith(
    { type: "object", propertyNames: { maxLength: 3 }, required: ["a"] },
    /#\/required names keys that propertyNames does not list/,
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

Deno.test("compileJsonSchema: dictionaries (additionalProperties with a schema) and their sizes", () => {
  check(
    { type: "object", additionalProperties: { type: "integer" } },
    ["{}", '{"a":1}', '{"a": 1, "b c": -2}'],
    ['{"a":"x"}', '{"a":1,}', "[]", '{"a":1.5}'],
  );
  check(
    {
      type: "object",
      additionalProperties: { type: "boolean" },
      minProperties: 1,
      maxProperties: 2,
    },
    ['{"x":true}', '{"x":true,"y":false}'],
    ["{}", '{"x":true,"y":false,"z":true}'],
  );
  check({ type: "object", maxProperties: 1 }, ["{}", '{"k":[1,{"a":null}]}'], ['{"a":1,"b":2}']);
  // A schema of annotations alone is true: beside properties it adds nothing Rill writes.
  check(
    {
      type: "object",
      properties: { a: { type: "integer" } },
      additionalProperties: { description: "any" },
    },
    ['{"a":1}', "{}"],
    ['{"a":"x"}'],
  );
  // As zod's record writes it: keys of a string schema, or listed (and then all required).
  check(
    { type: "object", propertyNames: { type: "string" }, additionalProperties: { type: "number" } },
    ["{}", '{"a":1.5,"b":2}'],
    ['{"a":"x"}'],
  );
  check(
    {
      type: "object",
      propertyNames: { type: "string", enum: ["a", "b"] },
      additionalProperties: { type: "number" },
      required: ["a", "b"],
    },
    ['{"a":1,"b":2}'],
    ['{"a":1}', '{"a":1,"b":2,"c":3}', '{"b":2,"a":1}'],
  );
  check(
    { type: "object", propertyNames: { pattern: "^[a-z]+$" }, additionalProperties: true },
    ['{"ab":1}', "{}"],
    ['{"Ab":1}', '{"":1}'],
  );
});

Deno.test("compileJsonSchema: tuples (prefixItems, or an items list with additionalItems)", () => {
  const pair = { type: "array", prefixItems: [{ type: "integer" }, { type: "string" }] };
  // As Pydantic writes tuple[int, str]: exactly two.
  check({ ...pair, minItems: 2, maxItems: 2 }, ['[1,"a"]', '[1, "a"]'], [
    "[1]",
    '["a",1]',
    '[1,"a",2]',
  ]);
  // Fewer items than the prefix, and any items after it.
  check(pair, ["[]", "[1]", '[1,"a"]', '[1,"a",null,[2]]'], ['["a"]', "[1,2]"]);
  check({ ...pair, items: { type: "boolean" }, minItems: 3 }, [
    '[1,"a",true]',
    '[1,"a",true,false]',
  ], [
    '[1,"a"]',
    '[1,"a",1]',
  ]);
  check({ ...pair, items: false }, ["[]", "[1]", '[1,"a"]'], ['[1,"a",true]']);
  check(
    { type: "array", items: [{ const: "x" }], additionalItems: { type: "integer" } },
    ['["x"]', '["x",1,2]'],
    ['["x","y"]', "[1]"],
  );
  check({ type: "array", prefixItems: [], items: { type: "integer" } }, ["[]", "[1,2]"], ['["a"]']);
  check({ type: "array", uniqueItems: false, items: { type: "integer" } }, ["[1,1]"], []);
});

Deno.test("compileJsonSchema: oneOf of alternatives that exclude each other, by type, value or tag", () => {
  // Pydantic's discriminated union: the tag property is required and constant in each.
  const pets = {
    $defs: {
      Cat: {
        type: "object",
        properties: { kind: { const: "cat", title: "Kind" }, lives: { type: "integer" } },
        required: ["kind", "lives"],
      },
      Dog: {
        type: "object",
        properties: { kind: { enum: ["dog"] }, good: { type: "boolean" } },
        required: ["kind", "good"],
      },
    },
    oneOf: [{ $ref: "#/$defs/Cat" }, { $ref: "#/$defs/Dog" }],
    discriminator: { propertyName: "kind" },
  };
  check(pets, ['{"kind":"cat","lives":9}', '{"kind":"dog","good":true}'], [
    '{"kind":"cat","good":true}',
    '{"kind":"bird","lives":1}',
  ]);
  check({ oneOf: [{ type: "string" }, { type: "integer" }, { type: "null" }] }, [
    '"a"',
    "3",
    "null",
  ], [
    "1.5",
    "true",
  ]);
  check({ oneOf: [{ const: 1 }, { const: 2 }] }, ["1", "2"], ["3"]);
});

Deno.test("compileJsonSchema: allOf merged, as Pydantic and OpenAPI generators write it, and nullable", () => {
  // Pydantic v1's reference with a description of its own.
  const wrapped = {
    $defs: { Point: { type: "object", properties: { x: { type: "integer" } }, required: ["x"] } },
    type: "object",
    properties: { at: { allOf: [{ $ref: "#/$defs/Point" }], description: "where" } },
    required: ["at"],
  };
  check(wrapped, ['{"at":{"x":1}}'], ['{"at":{}}', '{"at":1}']);
  // An object extended with more properties.
  const extended = {
    allOf: [
      { type: "object", properties: { id: { type: "integer" } }, required: ["id"] },
      { properties: { name: { type: "string" } }, required: ["name"] },
    ],
  };
  check(extended, ['{"id":1,"name":"a"}'], ['{"id":1}', '{"name":"a"}']);
  check({ allOf: [{ type: "number" }, { type: "integer", minimum: 0 }] }, ["0", "7"], [
    "-1",
    "1.5",
  ]);
  check({ type: "string", nullable: true, maxLength: 2 }, ['"ab"', "null"], ['"abc"', "1"]);
});
