import assert from "node:assert/strict";
import { exclusive, mergeAllOf } from "./schema_combine.ts";

const ROOT = {
  $defs: {
    A: { type: "object", properties: { tag: { const: "a" } }, required: ["tag"] },
    B: { type: "object", properties: { tag: { enum: ["b", "c"] } }, required: ["tag"] },
  },
};
const resolve = (s: unknown): unknown => {
  const ref = (s as { $ref?: string } | null)?.$ref;
  return ref === undefined ? s : ROOT.$defs[ref.split("/").pop() as "A" | "B"];
};
const fail = (message: string): never => {
  throw new TypeError(message);
};

Deno.test("mergeAllOf lays the parts' properties side by side, joins required and meets types", () => {
  const merged = mergeAllOf(
    {
      description: "outer",
      allOf: [
        { $ref: "#/$defs/A" },
        { properties: { n: { type: "integer" } }, required: ["n"], description: "inner" },
        { allOf: [{ type: ["object", "null"] }] },
      ],
    },
    resolve,
    fail,
  );
  assert.deepEqual(merged, {
    description: "outer",
    type: "object",
    properties: { tag: { const: "a" }, n: { type: "integer" } },
    required: ["tag", "n"],
  });
  assert.deepEqual(
    mergeAllOf({ allOf: [{ type: "number" }, { type: "integer" }] }, resolve, fail),
    {
      type: "integer",
    },
  );
  assert.throws(
    () => mergeAllOf({ allOf: [{ maxLength: 2 }, { maxLength: 3 }] }, resolve, fail),
    /disagree on 'maxLength'/,
  );
  assert.throws(
    () =>
      mergeAllOf(
        { allOf: [{ properties: { a: { type: "string" } } }, { properties: { a: {} } }] },
        resolve,
        fail,
      ),
    /defines property 'a' twice/,
  );
});

Deno.test("exclusive tells alternatives apart by type, value or a required tag, and nothing else", () => {
  assert.ok(exclusive({ type: "string" }, { type: "null" }, resolve));
  assert.ok(!exclusive({ type: "integer" }, { type: "number" }, resolve));
  assert.ok(exclusive({ const: "x" }, { enum: ["y", 1] }, resolve));
  assert.ok(exclusive({ const: "x" }, { type: "number" }, resolve));
  assert.ok(exclusive({ $ref: "#/$defs/A" }, { $ref: "#/$defs/B" }, resolve));
  assert.ok(!exclusive({ $ref: "#/$defs/A" }, { type: "object" }, resolve));
  // A tag that is not required in both leaves an object matching both.
  assert.ok(
    !exclusive(
      { properties: { tag: { const: "a" } } },
      { properties: { tag: { const: "b" } }, required: ["tag"] },
      resolve,
    ),
  );
  assert.ok(!exclusive({ type: "string" }, { type: "string", maxLength: 2 }, resolve));
});
