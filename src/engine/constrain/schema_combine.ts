/**
 * `allOf` and `oneOf` for the JSON schema compiler, as work on schemas: an `allOf` merged into
 * one schema, and the proof that `oneOf`'s alternatives exclude each other, so that a document
 * written to match any one of them matches exactly one.
 */

type Schema = Record<string, unknown>;

/** A schema with its `$ref`s followed (to a schema that is no reference). */
export type Resolve = (schema: unknown) => unknown;

/**
 * Keywords that only describe: accepted anywhere, no effect on the output; a merge keeps the
 * outer schema's. (`discriminator` is OpenAPI's tag of a union's alternatives, which say what
 * it says themselves.)
 */
export const ANNOTATIONS: ReadonlySet<string> = new Set([
  "$schema",
  "$id",
  "$comment",
  "title",
  "description",
  "default",
  "examples",
  "deprecated",
  "readOnly",
  "writeOnly",
  "discriminator",
]);

/**
 * `schema` with its `allOf` merged in: the parts' properties side by side, their `required`
 * joined, their types intersected, any other keyword taken when the parts agree on it.
 *
 * @throws {TypeError} (through `fail`) for parts that disagree on a keyword or a property, or an
 *   `additionalProperties` in an allOf of several schemas, whose meaning there is another
 */
export function mergeAllOf(
  schema: Schema,
  resolve: Resolve,
  fail: (message: string) => never,
): Schema {
  const parts = flatten(schema, resolve, fail);
  const contributing = parts.filter((part) =>
    Object.keys(part).some((k) => !ANNOTATIONS.has(k) && k !== "$defs" && k !== "definitions")
  );
  if (contributing.length > 1 && contributing.some((p) => p.additionalProperties !== undefined)) {
    fail("holds additionalProperties in an allOf of several schemas");
  }
  const merged: Schema = {};
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) {
      if (key === "$defs" || key === "definitions") continue;
      if (ANNOTATIONS.has(key)) {
        if (!(key in merged)) merged[key] = value;
      } else if (key === "properties") {
        merged.properties = mergeProperties(merged.properties, value, fail);
      } else if (key === "required") {
        const names = Array.isArray(value) ? value : [];
        merged.required = [...new Set([...(merged.required as unknown[] ?? []), ...names])];
      } else if (key === "type" && merged.type !== undefined) {
        const list = (t: unknown): unknown[] => (Array.isArray(t) ? t : [t]);
        // Every integer is a number: their meet is the integer.
        const meet = (t: unknown, u: unknown) =>
          t === u ? [t] : overlapping(String(t), String(u)) ? ["integer"] : [];
        const both = [
          ...new Set(list(merged.type).flatMap((t) => list(value).flatMap((u) => meet(t, u)))),
        ];
        if (both.length === 0) fail("joins schemas of no common type in allOf");
        merged.type = both.length === 1 ? both[0] : both;
      } else if (key in merged && JSON.stringify(merged[key]) !== JSON.stringify(value)) {
        fail(`has parts that disagree on '${key}' in allOf`);
      } else {
        merged[key] = value;
      }
    }
  }
  return merged;
}

/** The schema without its allOf, then each part (references followed, nested allOfs opened). */
function flatten(schema: Schema, resolve: Resolve, fail: (message: string) => never): Schema[] {
  const { allOf, ...rest } = schema;
  if (!Array.isArray(allOf) || allOf.length === 0) fail("has an allOf that is no non-empty array");
  const out: Schema[] = [rest];
  for (const part of allOf) {
    const resolved = resolve(part);
    if (resolved === true) continue;
    if (!isObject(resolved)) fail("has an allOf part that is no schema object");
    if (resolved.allOf !== undefined) out.push(...flatten(resolved, resolve, fail));
    else out.push(resolved);
  }
  return out;
}

function mergeProperties(
  into: unknown,
  from: unknown,
  fail: (message: string) => never,
): Schema {
  const merged: Schema = { ...(isObject(into) ? into : {}) };
  for (const [name, schema] of Object.entries(isObject(from) ? from : {})) {
    if (name in merged && JSON.stringify(merged[name]) !== JSON.stringify(schema)) {
      fail(`defines property '${name}' twice, differently, in allOf`);
    }
    merged[name] = schema;
  }
  return merged;
}

/**
 * Whether no document matches both `a` and `b`, as far as can be told simply: they admit no
 * common type, or no common value, or both require a property that takes no common value
 * (a tag, as Pydantic's and zod's discriminated unions write them).
 */
export function exclusive(a: unknown, b: unknown, resolve: Resolve): boolean {
  const [x, y] = [resolve(a), resolve(b)];
  if (!isObject(x) || !isObject(y)) return false;
  if (apart(typesOf(x), typesOf(y), overlapping)) return true;
  if (apart(valuesOf(x), valuesOf(y), sameValue)) return true;
  const required = (s: Schema) => (Array.isArray(s.required) ? s.required : []);
  const property = (s: Schema, name: string) =>
    resolve(isObject(s.properties) ? s.properties[name] : undefined);
  return required(x).some((name) => {
    if (!required(y).includes(name)) return false;
    const [px, py] = [property(x, name), property(y, name)];
    return isObject(px) && isObject(py) && apart(valuesOf(px), valuesOf(py), sameValue);
  });
}

/** Both lists known and no item of one `like` an item of the other. */
function apart<T>(
  a: readonly T[] | undefined,
  b: readonly T[] | undefined,
  like: (a: T, b: T) => boolean,
): boolean {
  return a !== undefined && b !== undefined && !a.some((v) => b.some((w) => like(v, w)));
}

function overlapping(t: string, u: string): boolean {
  return t === u || (t === "integer" && u === "number") || (t === "number" && u === "integer");
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The values a schema admits, when it lists them (`const`, `enum`). */
function valuesOf(schema: Schema): unknown[] | undefined {
  if (schema.const !== undefined) return [schema.const];
  return Array.isArray(schema.enum) ? schema.enum : undefined;
}

/** The types a schema admits, when it says or they can be told; undefined: any. */
function typesOf(schema: Schema): string[] | undefined {
  const type = schema.type;
  if (typeof type === "string") return [type];
  if (Array.isArray(type)) return type.filter((t): t is string => typeof t === "string");
  const values = valuesOf(schema);
  if (values !== undefined) return values.map(typeOfValue);
  if (schema.properties !== undefined || schema.required !== undefined) return ["object"];
  if (schema.items !== undefined || schema.prefixItems !== undefined) return ["array"];
  return undefined;
}

function typeOfValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function isObject(value: unknown): value is Schema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
