import { ByteClass, bytesOf, type Grammar, GrammarBuilder } from "./grammar.ts";
import { digit, JsonRules } from "./json_rules.ts";
import { regexRule } from "./regex.ts";
import { ANNOTATIONS, exclusive, mergeAllOf } from "./schema_combine.ts";

/** Keywords Rill enforces, each with the types it applies to (empty: any). */
const KEYWORDS: Record<string, readonly string[]> = {
  type: [],
  enum: [],
  const: [],
  anyOf: [],
  oneOf: [],
  allOf: [],
  nullable: [],
  $ref: [],
  $defs: [],
  definitions: [],
  properties: ["object"],
  required: ["object"],
  additionalProperties: ["object"],
  minProperties: ["object"],
  maxProperties: ["object"],
  propertyNames: ["object"],
  items: ["array"],
  prefixItems: ["array"],
  additionalItems: ["array"],
  uniqueItems: ["array"],
  minItems: ["array"],
  maxItems: ["array"],
  minLength: ["string"],
  maxLength: ["string"],
  format: ["string"],
  pattern: ["string"],
  minimum: ["number", "integer"],
  maximum: ["number", "integer"],
  exclusiveMinimum: ["integer"],
  exclusiveMaximum: ["integer"],
};

const TYPES = ["object", "array", "string", "number", "integer", "boolean", "null"];

/** String formats with a grammar of their own. */
export const STRING_FORMATS: readonly string[] = ["date", "time", "date-time", "uuid", "email"];

/** Integers are written with at most this many digits, so they stay exact in a double. */
const MAX_DIGITS = 15;
const LARGEST = 10 ** MAX_DIGITS - 1;

type Schema = Record<string, unknown>;

/** Options of {@link compileJsonSchema}. */
export interface JsonSchemaOptions {
  /** Named in errors before the schema path, e.g. `response_format.json_schema.schema`. */
  readonly where?: string;
}

/**
 * Compiles a JSON schema (the subset structured-output clients use) into a byte grammar whose
 * documents all validate against it: compact JSON with at most one space after `:` and `,`,
 * object properties in the schema's order (optional ones may be left out, undeclared ones are
 * never written), integers and integer parts of at most 15 digits, no exponents.
 *
 * Enforced: `type` (or a list of types), `enum`, `const`, `anyOf`, `oneOf` (alternatives that
 * exclude each other, see `exclusive`), `allOf` (merged, see `mergeAllOf`), OpenAPI's
 * `nullable`, `$ref` into `$defs` or `definitions` (recursion allowed), `properties`,
 * `required`, `additionalProperties` (false, true, or a schema of every value of an object
 * without `properties`), `minProperties` and `maxProperties` (of such objects), `items`,
 * `prefixItems` (and the older `items` list with `additionalItems`), `minItems`, `maxItems`,
 * `uniqueItems` false, `minLength`, `maxLength`, `format` (date, time, date-time, uuid, email),
 * `pattern` (see `compileRegex`, written whole), integer bounds (`minimum`, `maximum`,
 * `exclusiveMinimum`, `exclusiveMaximum`) and integral bounds of numbers.
 *
 * @param schema the schema (`true` or `{}` for any JSON value)
 * @param options where the schema sits in the request, for error messages
 * @returns the grammar
 * @throws {TypeError} naming the keyword and its path when the schema uses anything else, or
 *   when a value is malformed
 * @throws {RangeError} when the schema admits no document Rill can write
 */
export function compileJsonSchema(schema: unknown, options: JsonSchemaOptions = {}): Grammar {
  const compiler = new SchemaCompiler(schema, options.where ?? "schema");
  const start = compiler.value(schema, "#");
  return compiler.build(start);
}

/** The grammar of any JSON object (`response_format: {type: "json_object"}`). */
export function jsonObjectGrammar(): Grammar {
  const compiler = new SchemaCompiler({}, "json_object");
  return compiler.build(compiler.value({ type: "object" }, "#"));
}

/** The fragment compiler behind {@link compileJsonSchema}, open for wrapping grammars (tool calls). */
export class SchemaCompiler {
  readonly builder: GrammarBuilder;
  readonly #root: unknown;
  readonly #where: string;
  readonly #refs = new Map<string, number>();
  readonly #rules: JsonRules;
  readonly #lenient: boolean;

  /**
   * @param root the schema `$ref`s resolve in
   * @param where named in errors before the schema path
   * @param builder the grammar the rules go into (default: a new one)
   * @param lenient a subschema outside the supported subset (a keyword, a bound above 4096)
   *   admits any value of the types it names, instead of failing the whole schema
   */
  constructor(
    root: unknown,
    where: string,
    builder: GrammarBuilder = new GrammarBuilder(),
    lenient = false,
  ) {
    this.builder = builder;
    this.#rules = new JsonRules(builder);
    this.#root = root;
    this.#where = where;
    this.#lenient = lenient;
  }

  /** Compiles the grammar with `start` as its document rule, reporting failures at the schema. */
  build(start: number): Grammar {
    try {
      return this.builder.build(start);
    } catch (error) {
      if (error instanceof RangeError) {
        throw new RangeError(`${this.#where} admits no finite JSON document`);
      }
      throw error;
    }
  }

  /** The rule of a value matching `schema`, found at `path` (a JSON pointer). */
  value(schema: unknown, path: string): number {
    if (!this.#lenient) return this.#value(schema, path);
    try {
      return this.#value(schema, path);
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
      return this.#loose(schema, path);
    }
  }

  /** Any value of the types `schema` names; any JSON value when it names none. */
  #loose(schema: unknown, path: string): number {
    const type = isObject(schema) ? schema.type : undefined;
    const named = (Array.isArray(type) ? type : [type]).filter((t): t is string =>
      typeof t === "string" && TYPES.includes(t)
    );
    if (named.length === 0) return this.#any();
    const types = named.includes("number") ? named.filter((t) => t !== "integer") : named;
    const rules = types.map((t) => this.#typed(t, {}, `${path} loose`));
    return rules.length === 1
      ? rules[0]!
      : this.builder.rule(`${path} loose|`, ...rules.map((r) => [r]));
  }

  #value(schema: unknown, path: string): number {
    if (schema === true) return this.#any();
    if (schema === false) throw this.#error(path, "is false: no value matches it");
    if (!isObject(schema)) throw this.#error(path, "must be an object or a boolean");
    this.#checkKeywords(schema, path);
    if (schema.$ref !== undefined) return this.#ref(schema, path);
    if (schema.nullable === true) {
      const { nullable: _, ...rest } = schema;
      return this.builder.rule(`${path} nullable`, [this.value(rest, path)], [
        this.builder.literal("null"),
      ]);
    }
    if (schema.allOf !== undefined) {
      const merged = mergeAllOf(schema, (s) => this.#resolve(s, path), (message) => {
        throw this.#error(path, message);
      });
      return this.value(merged, path);
    }
    if (schema.oneOf !== undefined) return this.#oneOf(schema, path);
    if (schema.const !== undefined) return this.#enum([schema.const], schema, path);
    if (schema.enum !== undefined) {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0) {
        throw this.#error(`${path}/enum`, "must be a non-empty array");
      }
      return this.#enum(schema.enum, schema, path);
    }
    if (schema.anyOf !== undefined) return this.#anyOf(schema, path);
    const types = this.#types(schema, path);
    const rules = types.map((type) => this.#typed(type, schema, path));
    return rules.length === 1 ? rules[0]! : this.builder.rule(`${path}|`, ...rules.map((r) => [r]));
  }

  /** The rule of the JSON text of `value` exactly. */
  literal(value: unknown): number {
    return this.builder.literal(JSON.stringify(value));
  }

  /** `" "?`: the optional space after `:` and `,`. */
  space(): number {
    return this.#rules.shared("space", (b) => b.rule("space", [], bytesOf(" ")));
  }

  #checkKeywords(schema: Schema, path: string): void {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    for (const key of Object.keys(schema)) {
      if (ANNOTATIONS.has(key)) continue;
      const applies = KEYWORDS[key];
      if (applies === undefined) {
        throw new TypeError(
          `Unsupported JSON schema keyword '${key}' at ${this.#where} ${path}/${escape(key)}`,
        );
      }
      if (
        applies.length > 0 && schema.type !== undefined && !types.some((t) => applies.includes(t))
      ) {
        throw new TypeError(
          `Unsupported JSON schema keyword '${key}' for type ${
            types.join(" or ")
          } at ${this.#where} ${path}/${escape(key)}`,
        );
      }
    }
    if (schema.$ref !== undefined) {
      const others = Object.keys(schema).filter((k) =>
        !ANNOTATIONS.has(k) && k !== "$ref" && k !== "$defs" && k !== "definitions"
      );
      if (others.length > 0) {
        throw new TypeError(
          `Unsupported JSON schema keyword '${others[0]}' beside $ref at ${this.#where} ${path}`,
        );
      }
    }
  }

  #types(schema: Schema, path: string): string[] {
    const type = schema.type;
    if (type === undefined) {
      if (schema.properties !== undefined || schema.required !== undefined) return ["object"];
      if (schema.items !== undefined) return ["array"];
      if (
        schema.format !== undefined || schema.minLength !== undefined ||
        schema.pattern !== undefined
      ) return ["string"];
      if (schema.minimum !== undefined || schema.maximum !== undefined) return ["number"];
      return TYPES.filter((t) => t !== "integer");
    }
    const list = Array.isArray(type) ? type : [type];
    if (list.length === 0) throw this.#error(`${path}/type`, "must not be empty");
    for (const t of list) {
      if (typeof t !== "string" || !TYPES.includes(t)) {
        throw this.#error(`${path}/type`, `has an unknown type ${JSON.stringify(t)}`);
      }
    }
    // Every integer is a number: "number" alone covers both.
    return list.includes("number") ? list.filter((t) => t !== "integer") : list;
  }

  #typed(type: string, schema: Schema, path: string): number {
    switch (type) {
      case "object":
        return this.#object(schema, path);
      case "array":
        return this.#array(schema, path);
      case "string":
        return this.#string(schema, path);
      case "number":
        return this.#number(schema, path, false);
      case "integer":
        return this.#number(schema, path, true);
      case "boolean":
        return this.#rules.shared(
          "boolean",
          (b) => b.rule("boolean", [b.literal("true")], [b.literal("false")]),
        );
      default:
        return this.builder.literal("null");
    }
  }

  #ref(schema: Schema, path: string): number {
    const ref = schema.$ref;
    let rule = typeof ref === "string" ? this.#refs.get(ref) : undefined;
    if (rule !== undefined) return rule;
    const target = this.#target(ref, path);
    // Declared before compiling the target, so that recursive references find it.
    rule = this.builder.declare(ref as string);
    this.#refs.set(ref as string, rule);
    this.builder.add(rule, [this.value(target, ref as string)]);
    return rule;
  }

  /** The schema `$ref` (found at `path`) points to in the root. */
  #target(ref: unknown, path: string): unknown {
    if (typeof ref !== "string") throw this.#error(`${path}/$ref`, "must be a string");
    if (ref !== "#" && !ref.startsWith("#/")) {
      throw this.#error(`${path}/$ref`, `points outside the schema: ${JSON.stringify(ref)}`);
    }
    let target: unknown = this.#root;
    for (const part of ref === "#" ? [] : ref.slice(2).split("/")) {
      const key = part.replaceAll("~1", "/").replaceAll("~0", "~");
      if (!isObject(target) || !(key in target)) {
        throw this.#error(`${path}/$ref`, `points nowhere: ${JSON.stringify(ref)}`);
      }
      target = target[key];
    }
    return target;
  }

  /** `schema` with its references followed (at most 64, so that a cycle of them ends). */
  #resolve(schema: unknown, path: string): unknown {
    let target = schema;
    for (let hops = 0; isObject(target) && target.$ref !== undefined; hops++) {
      if (hops === 64) throw this.#error(path, "has $refs that lead to no schema");
      target = this.#target(target.$ref, path);
    }
    return target;
  }

  /**
   * `oneOf` as `anyOf`, once each pair of its alternatives is shown to exclude each other (so a
   * document matching one matches no other).
   */
  #oneOf(schema: Schema, path: string): number {
    const options = schema.oneOf;
    if (!Array.isArray(options) || options.length === 0) {
      throw this.#error(`${path}/oneOf`, "must be a non-empty array");
    }
    const others = Object.keys(schema).filter((k) =>
      !ANNOTATIONS.has(k) && !["oneOf", "$defs", "definitions"].includes(k)
    );
    if (others.length > 0) {
      throw new TypeError(
        `Unsupported JSON schema keyword '${others[0]}' beside oneOf at ${this.#where} ${path}`,
      );
    }
    const resolve = (s: unknown) => this.#resolve(s, path);
    options.forEach((a, i) =>
      options.slice(0, i).forEach((b, j) => {
        if (!exclusive(a, b, resolve)) {
          throw new TypeError(
            `Unsupported JSON schema oneOf at ${this.#where} ${path}/oneOf: alternatives ${j} and ${i} may both match (Rill writes a oneOf whose alternatives differ in type, in value, or in a required tag property; anyOf takes any)`,
          );
        }
      })
    );
    const rules = options.map((option, i) => [this.value(option, `${path}/oneOf/${i}`)]);
    return this.builder.rule(`${path} oneOf`, ...rules);
  }

  #enum(values: readonly unknown[], schema: Schema, path: string): number {
    const types = schema.type === undefined ? undefined : this.#types(schema, path);
    const alternatives = values.map((v, i) => {
      if (types !== undefined && !types.some((t) => isOfType(v, t))) {
        throw this.#error(
          `${path}/enum/${i}`,
          `is not of the schema's type ${JSON.stringify(schema.type)}`,
        );
      }
      return [this.literal(v)];
    });
    return this.builder.rule(`${path} enum`, ...alternatives);
  }

  #anyOf(schema: Schema, path: string): number {
    const options = schema.anyOf;
    if (!Array.isArray(options) || options.length === 0) {
      throw this.#error(`${path}/anyOf`, "must be a non-empty array");
    }
    const others = Object.keys(schema).filter((k) =>
      !ANNOTATIONS.has(k) && !["anyOf", "$defs", "definitions"].includes(k)
    );
    if (others.length > 0) {
      throw new TypeError(
        `Unsupported JSON schema keyword '${others[0]}' beside anyOf at ${this.#where} ${path}`,
      );
    }
    const rules = options.map((option, i) => [this.value(option, `${path}/anyOf/${i}`)]);
    return this.builder.rule(`${path} anyOf`, ...rules);
  }

  #object(schema: Schema, path: string): number {
    if (schema.propertyNames !== undefined) return this.#keyed(schema, path);
    const b = this.builder;
    const properties = schema.properties ?? {};
    if (!isObject(properties)) throw this.#error(`${path}/properties`, "must be an object");
    const required = schema.required ?? [];
    if (!Array.isArray(required) || !required.every((r) => typeof r === "string")) {
      throw this.#error(`${path}/required`, "must be an array of strings");
    }
    const given = schema.additionalProperties;
    if (given !== undefined && typeof given !== "boolean" && !isObject(given)) {
      throw this.#error(`${path}/additionalProperties`, "must be a boolean or a schema");
    }
    // A schema of annotations alone admits any value, as true does.
    const extra = isObject(given) && Object.keys(given).every((k) => ANNOTATIONS.has(k))
      ? true
      : given;
    for (const name of required) {
      if (!(name in properties)) {
        throw this.#error(`${path}/required`, `names '${name}', which is not in properties`);
      }
    }
    const names = Object.keys(properties);
    const counted = ["minProperties", "maxProperties"].find((k) => schema[k] !== undefined);
    if (names.length > 0 && (isObject(extra) || counted !== undefined)) {
      const keyword = isObject(extra) ? "additionalProperties" : counted!;
      throw new TypeError(
        `Unsupported JSON schema keyword '${keyword}'${
          isObject(extra) ? " with a schema" : ""
        } beside properties at ${this.#where} ${path}/${keyword}`,
      );
    }
    if (names.length === 0 && extra !== false) {
      return isObject(extra) || counted !== undefined
        ? this.#dictionary(schema, extra === undefined ? true : extra, this.#rules.string(), path)
        : this.#anyObject();
    }
    const open = b.literal("{");
    const close = b.literal("}");
    // first[i]: properties i.. with none written yet; next[i]: the same after one was written.
    let first = b.rule(`${path} {}`, []);
    let next = first;
    for (let i = names.length - 1; i >= 0; i--) {
      const name = names[i]!;
      const value = this.value(properties[name], `${path}/properties/${escape(name)}`);
      const member = b.rule(`${path}.${name}`, [
        this.literal(name),
        b.literal(":"),
        this.space(),
        value,
      ]);
      const optional = !required.includes(name);
      const firstHere = b.rule(`${path} first ${name}`, [member, next]);
      const nextHere = b.rule(`${path} next ${name}`, [b.literal(","), this.space(), member, next]);
      if (optional) {
        b.add(firstHere, [first]);
        b.add(nextHere, [next]);
      }
      first = firstHere;
      next = nextHere;
    }
    return b.rule(path, [open, first, close]);
  }

  /**
   * An object whose keys match `propertyNames` (a schema of strings): keys listed by its `enum`
   * or `const` are the object's properties, each taking `additionalProperties`; others make a
   * dictionary of such keys (zod's `record` writes both).
   */
  #keyed(schema: Schema, path: string): number {
    const { propertyNames: keys, ...rest } = schema;
    const where = `${path}/propertyNames`;
    if (keys === true) return this.#object(rest, path);
    if (!isObject(keys) || (keys.type !== undefined && keys.type !== "string")) {
      throw this.#error(where, "must be a schema of strings");
    }
    if (rest.properties !== undefined) {
      throw new TypeError(
        `Unsupported JSON schema keyword 'propertyNames' beside properties at ${this.#where} ${where}`,
      );
    }
    const listed = keys.const !== undefined ? [keys.const] : keys.enum;
    if (Array.isArray(listed)) {
      if (!listed.every((k) => typeof k === "string")) {
        throw this.#error(where, "lists keys that are not strings");
      }
      const value = rest.additionalProperties ?? true;
      return this.#object({
        ...rest,
        properties: Object.fromEntries(listed.map((key) => [key, value])),
        additionalProperties: false,
      }, path);
    }
    if (Array.isArray(rest.required) && rest.required.length > 0) {
      throw this.#error(`${path}/required`, "names keys that propertyNames does not list");
    }
    const key = this.value({ ...keys, type: "string" }, where);
    return this.#dictionary(rest, rest.additionalProperties ?? true, key, path);
  }

  /**
   * An object of keys matching the rule `key` whose values match `values`, with
   * `minProperties` to `maxProperties` members (a dictionary: zod's `record`, Pydantic's
   * `dict[str, T]`).
   */
  #dictionary(schema: Schema, values: unknown, key: number, path: string): number {
    const b = this.builder;
    const min = this.#count(schema, "minProperties", path) ?? 0;
    const max = this.#count(schema, "maxProperties", path) ?? Infinity;
    if (min > max) throw this.#error(`${path}/minProperties`, `exceeds maxProperties (${max})`);
    if (max !== Infinity && max > 4096) {
      throw this.#error(`${path}/maxProperties`, "is above 4096");
    }
    const value = this.value(values, `${path}/additionalProperties`);
    const member = b.rule(`${path} member`, [
      key,
      b.literal(":"),
      this.space(),
      value,
    ]);
    return this.#list(path, "{", "}", member, min, max);
  }

  /** `open`, then `min` to `max` of `item` apart by commas, then `close`. */
  #list(path: string, open: string, close: string, item: number, min: number, max: number): number {
    const b = this.builder;
    const later = b.rule(`${path} ,item`, [b.literal(","), this.space(), item]);
    const list = b.rule(path);
    if (min === 0) b.add(list, [b.literal(open), b.literal(close)]);
    if (max > 0) {
      const rest = b.repeat(`${path} items`, later, Math.max(0, min - 1), max - 1);
      b.add(list, [b.literal(open), item, rest, b.literal(close)]);
    }
    return list;
  }

  #array(schema: Schema, path: string): number {
    const min = this.#count(schema, "minItems", path) ?? 0;
    let max = this.#count(schema, "maxItems", path) ?? Infinity;
    if (min > max) throw this.#error(`${path}/minItems`, `exceeds maxItems (${max})`);
    if (max !== Infinity && max > 4096) throw this.#error(`${path}/maxItems`, "is above 4096");
    if (schema.uniqueItems !== undefined && schema.uniqueItems !== false) {
      throw new TypeError(
        `Unsupported JSON schema keyword 'uniqueItems' at ${this.#where} ${path}/uniqueItems (items cannot be kept apart: only false)`,
      );
    }
    // A tuple: prefixItems (or the older items list), then items (or additionalItems).
    const tuple = schema.prefixItems ?? (Array.isArray(schema.items) ? schema.items : undefined);
    if (tuple !== undefined) {
      if (!Array.isArray(tuple)) throw this.#error(`${path}/prefixItems`, "must be an array");
      const restKey = schema.prefixItems !== undefined ? "items" : "additionalItems";
      if (schema.prefixItems !== undefined && schema.additionalItems !== undefined) {
        throw new TypeError(
          `Unsupported JSON schema keyword 'additionalItems' beside prefixItems at ${this.#where} ${path}/additionalItems`,
        );
      }
      const rest = schema[restKey] ?? true;
      if (rest === false) max = Math.min(max, tuple.length);
      if (min > max) throw this.#error(`${path}/minItems`, `exceeds the ${max} items it allows`);
      if (tuple.length > 0) return this.#tuple(tuple, rest, min, max, path, restKey);
      return this.#list(path, "[", "]", this.value(rest, `${path}/${restKey}`), min, max);
    }
    if (schema.additionalItems !== undefined) {
      throw new TypeError(
        `Unsupported JSON schema keyword 'additionalItems' without an items list at ${this.#where} ${path}/additionalItems`,
      );
    }
    if (schema.items === undefined && min === 0 && max === Infinity) return this.#anyArray();
    const item = this.value(schema.items ?? true, `${path}/items`);
    return this.#list(path, "[", "]", item, min, max);
  }

  /**
   * An array whose first items match `prefix` (not empty) one by one and whose others match
   * `rest`, with `min` to `max` items.
   */
  #tuple(
    prefix: readonly unknown[],
    rest: unknown,
    min: number,
    max: number,
    path: string,
    restKey: string,
  ): number {
    const b = this.builder;
    const key = restKey === "items" ? "prefixItems" : "items";
    const close = b.literal("]");
    const later = (item: number) => b.rule(`${path} ,item`, [b.literal(","), this.space(), item]);
    // after[i]: the items from index i on (i > 0) and the closing bracket.
    const restItem = max > prefix.length ? this.value(rest, `${path}/${restKey}`) : undefined;
    let after = restItem === undefined ? close : b.rule(`${path} rest`, [
      b.repeat(
        `${path} rest items`,
        later(restItem),
        Math.max(0, min - prefix.length),
        max - prefix.length,
      ),
      close,
    ]);
    for (let i = Math.min(prefix.length, max) - 1; i >= 0; i--) {
      const item = this.value(prefix[i], `${path}/${key}/${i}`);
      const here = b.rule(`${path} from ${i}`, i === 0 ? [item, after] : [later(item), after]);
      if (i >= min) b.add(here, [close]);
      after = here;
    }
    return b.rule(path, [b.literal("["), after]);
  }

  #string(schema: Schema, path: string): number {
    const b = this.builder;
    const format = schema.format;
    const minLength = this.#count(schema, "minLength", path) ?? 0;
    const maxLength = this.#count(schema, "maxLength", path) ?? Infinity;
    if (schema.pattern !== undefined) {
      const pattern = schema.pattern;
      if (typeof pattern !== "string") throw this.#error(`${path}/pattern`, "must be a string");
      const beside = ["format", "minLength", "maxLength"].find((k) => schema[k] !== undefined);
      if (beside !== undefined) {
        throw new TypeError(
          `Unsupported JSON schema keyword '${beside}' beside pattern at ${this.#where} ${path}/${beside}`,
        );
      }
      // Whole matches: each also matches where the schema looks for one anywhere.
      const quote = b.literal('"');
      return b.rule(path, [
        quote,
        regexRule(b, pattern, `${this.#where} ${path}/pattern`, true),
        quote,
      ]);
    }
    if (format !== undefined) {
      if (typeof format !== "string" || !STRING_FORMATS.includes(format)) {
        throw new TypeError(
          `Unsupported JSON schema format ${
            JSON.stringify(format)
          } at ${this.#where} ${path}/format (supported: ${STRING_FORMATS.join(", ")})`,
        );
      }
      if (schema.minLength !== undefined || schema.maxLength !== undefined) {
        const keyword = schema.minLength !== undefined ? "minLength" : "maxLength";
        throw new TypeError(
          `Unsupported JSON schema keyword '${keyword}' beside format at ${this.#where} ${path}/${keyword}`,
        );
      }
      return this.#rules.format(format);
    }
    if (minLength > maxLength) {
      throw this.#error(`${path}/minLength`, `exceeds maxLength (${maxLength})`);
    }
    if (maxLength !== Infinity && maxLength > 4096) {
      throw this.#error(`${path}/maxLength`, "is above 4096");
    }
    if (minLength === 0 && maxLength === Infinity) return this.#rules.string();
    const quote = b.literal('"');
    const body = b.repeat(`${path} chars`, this.#rules.char(), minLength, maxLength);
    return b.rule(path, [quote, body, quote]);
  }

  #number(schema: Schema, path: string, integer: boolean): number {
    const b = this.builder;
    const bound = (key: string): number | undefined => {
      const v = schema[key];
      if (v === undefined) return undefined;
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw this.#error(`${path}/${key}`, "must be a number");
      }
      if (!Number.isInteger(v)) {
        throw new TypeError(
          `Unsupported JSON schema keyword '${key}' with a fractional bound at ${this.#where} ${path}/${key}`,
        );
      }
      return v;
    };
    let lo = bound("minimum") ?? -Infinity;
    let hi = bound("maximum") ?? Infinity;
    const exclusiveLo = bound("exclusiveMinimum");
    const exclusiveHi = bound("exclusiveMaximum");
    if (exclusiveLo !== undefined) lo = Math.max(lo, exclusiveLo + 1);
    if (exclusiveHi !== undefined) hi = Math.min(hi, exclusiveHi - 1);
    lo = Math.max(lo, -LARGEST);
    hi = Math.min(hi, LARGEST);
    if (lo > hi) throw this.#error(path, "admits no number of at most 15 digits");
    const whole = this.#rules.integerRange(lo, hi);
    if (integer) return whole;
    // A fraction is allowed on every integer part but the bounds themselves.
    const fraction = this.#rules.shared(
      "fraction",
      (g) =>
        g.rule("fraction", [g.literal("."), g.repeat("fraction digits", digit(), 1, MAX_DIGITS)]),
    );
    const zeros = this.#rules.shared(
      "zero fraction",
      (g) =>
        g.rule("zero fraction", [], [
          g.literal("."),
          g.repeat("zeros", ByteClass.of(48), 1, MAX_DIGITS),
        ]),
    );
    const number = b.rule(path, [whole, zeros]);
    if (lo < hi) {
      // Strictly inside: the integer part's range between the bounds.
      const inner: number[] = [];
      if (lo < 0) {
        // -(k + f) with k in 0..-lo-1 stays above lo; -0.f is covered by k = 0.
        const least = hi < 0 ? -hi : 0;
        if (least <= -lo - 1) {
          inner.push(
            b.rule(`${path} neg`, [b.literal("-"), this.#rules.natural(least, -lo - 1), fraction]),
          );
        }
      }
      if (hi > 0 && hi - 1 >= Math.max(lo, 0)) {
        inner.push(b.rule(`${path} pos`, [this.#rules.natural(Math.max(lo, 0), hi - 1), fraction]));
      }
      for (const r of inner) b.add(number, [r]);
    }
    return number;
  }

  #any(): number {
    const existing = this.#rules.get("value");
    if (existing !== undefined) return existing;
    const b = this.builder;
    const value = b.declare("value");
    this.#rules.keep("value", value);
    for (const type of TYPES) {
      if (type !== "integer") b.add(value, [this.#typed(type, {}, "#")]);
    }
    return value;
  }

  #anyObject(): number {
    const existing = this.#rules.get("object");
    if (existing !== undefined) return existing;
    const b = this.builder;
    const object = b.declare("object");
    this.#rules.keep("object", object);
    const member = b.rule("member", [
      this.#rules.string(),
      b.literal(":"),
      this.space(),
      this.#any(),
    ]);
    const more = b.star("members", b.rule(",member", [b.literal(","), this.space(), member]));
    b.add(object, [b.literal("{"), b.literal("}")]);
    b.add(object, [b.literal("{"), member, more, b.literal("}")]);
    return object;
  }

  #anyArray(): number {
    const existing = this.#rules.get("array");
    if (existing !== undefined) return existing;
    const b = this.builder;
    const array = b.declare("array");
    this.#rules.keep("array", array);
    const value = this.#any();
    const more = b.star("values", b.rule(",value", [b.literal(","), this.space(), value]));
    b.add(array, [b.literal("["), b.literal("]")]);
    b.add(array, [b.literal("["), value, more, b.literal("]")]);
    return array;
  }

  #count(schema: Schema, key: string, path: string): number | undefined {
    const v = schema[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw this.#error(`${path}/${key}`, "must be a non-negative integer");
    }
    return v;
  }

  #error(path: string, message: string): TypeError {
    return new TypeError(`JSON schema at ${this.#where} ${path} ${message}`);
  }
}

function isObject(value: unknown): value is Schema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isOfType(value: unknown, type: string): boolean {
  switch (type) {
    case "null":
      return value === null;
    case "integer":
      return Number.isInteger(value);
    case "array":
      return Array.isArray(value);
    case "object":
      return isObject(value);
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    default:
      return typeof value === "number";
  }
}

/** A JSON pointer token. */
function escape(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}
