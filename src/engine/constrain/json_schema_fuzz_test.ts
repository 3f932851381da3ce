/**
 * Random schemas built from the keywords zod and Pydantic write (dictionaries, tuples, oneOf,
 * allOf, nullable, enums, bounds), and random documents walked through each one's automaton:
 * every document the grammar admits must parse and validate with Ajv (draft 2020-12).
 */
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import { Automaton, DEAD } from "./automaton.ts";
import { compileJsonSchema } from "./json_schema.ts";

type Schema = Record<string, unknown>;

/** A seeded generator of numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed;
  return () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
}

/** A maker of random schemas `depth` levels deep, drawing from `rnd`. */
function schemaMaker(rnd: () => number): (depth: number) => Schema {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
  const leaf = (): Schema =>
    pick<Schema>([
      { type: "integer", minimum: 0, maximum: 9 },
      { type: "string", maxLength: 3 },
      { type: "boolean" },
      { type: "null" },
      { enum: ["a", "b", 1] },
      { const: "x" },
      { type: "string", nullable: true, maxLength: 2 },
    ]);
  const schema = (depth: number): Schema => {
    if (depth === 0) return leaf();
    const inner = () => schema(depth - 1);
    return pick<() => Schema>([
      () => ({ type: "object", additionalProperties: inner(), maxProperties: 2 }),
      () => ({
        type: "object",
        propertyNames: { maxLength: 2 },
        additionalProperties: inner(),
        maxProperties: 2,
      }),
      () => ({
        type: "array",
        prefixItems: [inner(), inner()],
        items: rnd() < 0.5 ? false : inner(),
        maxItems: 3,
      }),
      () => ({
        oneOf: [
          {
            type: "object",
            properties: { t: { const: "a" }, v: inner() },
            required: ["t", "v"],
            additionalProperties: false,
          },
          {
            type: "object",
            properties: { t: { const: "b" } },
            required: ["t"],
            additionalProperties: false,
          },
        ],
      }),
      () => ({
        allOf: [
          { type: "object", properties: { a: inner() }, required: ["a"] },
          { properties: { b: inner() } },
        ],
      }),
      () => ({
        oneOf: [
          { type: "string", maxLength: 2 },
          { type: "integer", minimum: 0, maximum: 5 },
          { type: "null" },
        ],
      }),
      () => ({ type: "array", items: inner(), maxItems: 2 }),
    ])();
  };
  return schema;
}

/** A random document of `m`'s language: random bytes, then, past 100, the way to an end. */
function walk(m: Automaton, rnd: () => number): string {
  const bytes: number[] = [];
  let state = m.start;
  for (let n = 0;; n++) {
    if (m.accepts(state) && (!m.continues(state) || rnd() < 0.1 || n > 100)) {
      return new TextDecoder().decode(Uint8Array.from(bytes));
    }
    const options: [number, number][] = [];
    for (let byte = 0; byte < 256; byte++) {
      const next = m.step(state, byte);
      if (next !== DEAD) options.push([byte, next]);
    }
    const [byte, next] = n > 100
      ? options.reduce((a, o) => (m.distance(o[1]) < m.distance(a[1]) ? o : a))
      : options[Math.floor(rnd() * options.length)]!;
    bytes.push(byte);
    state = next;
  }
}

Deno.test("fuzz: every document a random schema's grammar admits validates (Ajv, draft 2020-12)", () => {
  const ajv = new Ajv2020({ strict: false });
  const rnd = random(Number(Deno.env.get("RILL_FUZZ_SEED") ?? 1));
  const schema = schemaMaker(rnd);
  let documents = 0;
  for (let i = 0; i < 40; i++) {
    const s = schema(1 + Math.floor(rnd() * 3));
    const machine = new Automaton(compileJsonSchema(s));
    const validate = ajv.compile(s);
    for (let k = 0; k < 10; k++) {
      const text = walk(machine, rnd);
      assert.ok(validate(JSON.parse(text)), `${text} against ${JSON.stringify(s)}`);
      documents++;
    }
  }
  assert.equal(documents, 400);
});
