import assert from "node:assert/strict";
import { Ajv } from "ajv";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { z } from "zod";
import { zodResponseFormat } from "openai/helpers/zod";
import { metricValue, startServer } from "./_serve_harness.ts";

const ajv = new Ajv({ strict: false });
(addFormats as unknown as (a: Ajv) => void)(ajv);
// Draft 2020-12, for prefixItems.
const ajv2020 = new Ajv2020({ strict: false });

const MESSAGES = [{ role: "user" as const, content: "Describe a pet as JSON." }];

/** Schemas the outputs must validate against: nesting, arrays, enums, anyOf, $defs/$ref, formats. */
const SCHEMAS: Record<string, Record<string, unknown>> = {
  person: {
    type: "object",
    properties: {
      name: { type: "string", minLength: 1, maxLength: 20 },
      age: { type: "integer", minimum: 0, maximum: 120 },
      email: { type: "string", format: "email" },
      pets: {
        type: "array",
        items: {
          type: "object",
          properties: { kind: { enum: ["cat", "dog", "fish"] }, legs: { type: "integer" } },
          required: ["kind", "legs"],
          additionalProperties: false,
        },
        maxItems: 3,
      },
    },
    required: ["name", "age", "pets"],
    additionalProperties: false,
  },
  shapes: {
    $defs: {
      point: {
        type: "object",
        properties: { x: { type: "number" }, y: { type: "number" } },
        required: ["x", "y"],
        additionalProperties: false,
      },
    },
    type: "object",
    properties: {
      shape: {
        anyOf: [
          {
            type: "object",
            properties: { circle: { $ref: "#/$defs/point" }, r: { type: "number", minimum: 0 } },
            required: ["circle", "r"],
            additionalProperties: false,
          },
          { type: "array", items: { $ref: "#/$defs/point" }, minItems: 2, maxItems: 4 },
          { type: "null" },
        ],
      },
      when: { type: "string", format: "date-time" },
      ok: { type: "boolean" },
    },
    required: ["shape", "when", "ok"],
    additionalProperties: false,
  },
  tree: {
    $defs: {
      node: {
        type: "object",
        properties: {
          label: { type: ["string", "null"] },
          children: { type: "array", items: { $ref: "#/$defs/node" }, maxItems: 2 },
        },
        required: ["label", "children"],
        additionalProperties: false,
      },
    },
    $ref: "#/$defs/node",
  },
  // As zod and Pydantic write records, discriminated unions, tuples and extended models.
  inventory: {
    type: "object",
    properties: {
      counts: {
        type: "object",
        propertyNames: { type: "string", maxLength: 6 },
        additionalProperties: { type: "integer", minimum: 0, maximum: 9 },
        maxProperties: 3,
      },
      pet: {
        oneOf: [
          {
            type: "object",
            properties: {
              kind: { const: "cat" },
              lives: { type: "integer", minimum: 1, maximum: 9 },
            },
            required: ["kind", "lives"],
            additionalProperties: false,
          },
          {
            type: "object",
            properties: { kind: { const: "dog" }, good: { type: "boolean" } },
            required: ["kind", "good"],
            additionalProperties: false,
          },
        ],
      },
      at: {
        type: "array",
        prefixItems: [{ type: "integer" }, { type: "string", maxLength: 4 }],
        items: false,
        minItems: 1,
      },
      note: { type: "string", maxLength: 8, nullable: true },
      extended: {
        allOf: [
          { type: "object", properties: { id: { type: "integer" } }, required: ["id"] },
          { properties: { tag: { enum: ["a", "b"] } }, required: ["tag"] },
        ],
      },
    },
    required: ["counts", "pet", "at", "note", "extended"],
    additionalProperties: false,
  },
};

Deno.test("response_format json_schema: every random-sampled answer parses and validates (stories260K, 4 schemas x 6 seeds, whole and streamed)", async () => {
  await using server = await startServer();
  const client = server.client();
  let ran = 0;
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    const validate = (name === "inventory" ? ajv2020 : ajv).compile(schema);
    for (let seed = 0; seed < 6; seed++) {
      const request = {
        model: "stories260K",
        messages: MESSAGES,
        // The inventory's shortest document takes more than 80 of stories260K's small tokens.
        max_tokens: (name === "inventory" ? 160 : 80) + 20 * seed,
        temperature: 1.2,
        seed,
        response_format: {
          type: "json_schema" as const,
          json_schema: { name, schema, strict: true },
        },
      };
      let text: string;
      if (seed % 2 === 0) {
        const answer = await client.chat.completions.create(request);
        assert.equal(answer.choices[0]!.finish_reason, "stop");
        text = answer.choices[0]!.message.content!;
      } else {
        text = "";
        for await (
          const chunk of await client.chat.completions.create({ ...request, stream: true })
        ) {
          text += chunk.choices[0]?.delta.content ?? "";
        }
      }
      const value = JSON.parse(text);
      assert.ok(
        validate(value),
        `${name} seed ${seed}: ${text}\n${JSON.stringify(validate.errors)}`,
      );
      ran++;
    }
  }
  assert.equal(ran, 24);
  assert.ok(await metricValue(server.url, "rill_constrained_masks_total") > 0);
  assert.equal(await metricValue(server.url, "rill_schema_compile_seconds_count"), 4);
});

Deno.test("response_format json_object gives a JSON object, even with few tokens left", async () => {
  await using server = await startServer();
  for (const [seed, maxTokens] of [[1, 12], [2, 40], [3, 100]] as const) {
    const answer = await server.client().chat.completions.create({
      model: "stories260K",
      messages: MESSAGES,
      max_tokens: maxTokens,
      seed,
      response_format: { type: "json_object" },
    });
    const value = JSON.parse(answer.choices[0]!.message.content!);
    assert.ok(typeof value === "object" && value !== null && !Array.isArray(value));
    assert.ok(answer.usage!.completion_tokens <= maxTokens);
  }
});

Deno.test("chat.completions.parse with a zod schema returns a parsed, valid object", async () => {
  await using server = await startServer();
  const Pet = z.object({
    name: z.string(),
    species: z.enum(["cat", "dog", "bird"]),
    age: z.int(),
    vaccinated: z.boolean(),
    owner: z.object({ name: z.string(), phones: z.array(z.string()) }).nullable(),
  });
  for (const seed of [4, 5, 6]) {
    const completion = await server.client().chat.completions.parse({
      model: "stories260K",
      messages: MESSAGES,
      max_tokens: 150,
      seed,
      response_format: zodResponseFormat(Pet, "pet"),
    });
    const parsed = completion.choices[0]!.message.parsed;
    assert.ok(parsed !== null);
    assert.deepEqual(Pet.parse(parsed), parsed);
  }
});

Deno.test("a tool's schema outside the subset is loosened there, not refused: the call comes with the rest enforced", async () => {
  await using server = await startServer();
  const parameters = {
    type: "object",
    properties: { n: { type: "number", multipleOf: 3 }, unit: { enum: ["m", "s"] } },
    required: ["n", "unit"],
    additionalProperties: false,
  };
  const answer = await server.client().chat.completions.create({
    model: "stories260K",
    messages: MESSAGES,
    max_tokens: 60,
    tools: [{ type: "function", function: { name: "f", parameters } }],
    tool_choice: "required",
  });
  const call = answer.choices[0]!.message.tool_calls![0]!;
  assert.ok(call.type === "function");
  const args = JSON.parse(call.function.arguments);
  assert.deepEqual(Object.keys(args), ["n", "unit"]);
  assert.equal(typeof args.n, "number");
  assert.ok(["m", "s"].includes(args.unit));
});

Deno.test("a schema outside the subset, or one whose shortest answer exceeds max_tokens, is a 400 before any generation", async () => {
  await using server = await startServer();
  const before = await metricValue(server.url, "rill_completion_tokens_total");
  const post = (body: object) =>
    fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ messages: MESSAGES, ...body }),
    });
  const cases: [object, RegExp, string][] = [
    [
      {
        type: "json_schema",
        json_schema: {
          name: "x",
          schema: { type: "object", properties: { a: { type: "string", pattern: "^a\\b" } } },
        },
      },
      /response_format\.json_schema\.schema #\/properties\/a\/pattern: word boundaries \('\\b'\) are not supported at offset 2/,
      "response_format.json_schema.schema",
    ],
    [
      {
        type: "json_schema",
        json_schema: { name: "x", schema: { type: "array", uniqueItems: true } },
      },
      /'uniqueItems'/,
      "response_format.json_schema.schema",
    ],
    [
      {
        type: "json_schema",
        json_schema: { name: "x", schema: { type: "string", format: "ipv4" } },
      },
      /format "ipv4"/,
      "response_format.json_schema.schema",
    ],
    [
      { type: "json_schema", json_schema: { schema: {} } },
      /name/,
      "response_format.json_schema.name",
    ],
    [{ type: "yaml" }, /must be one of text, json_object, json_schema/, "response_format.type"],
  ];
  for (const [format, message, param] of cases) {
    const response = await post({ response_format: format, stream: true });
    assert.equal(response.status, 400);
    const { error } = await response.json();
    assert.match(error.message, message);
    assert.equal(error.param, param);
  }
  const short = await post({
    max_tokens: 20,
    response_format: {
      type: "json_schema",
      json_schema: { name: "shapes", schema: SCHEMAS.shapes },
    },
  });
  assert.equal(short.status, 400);
  const { error } = await short.json();
  assert.equal(error.param, "max_tokens");
  assert.equal(error.code, "max_tokens_too_small");
  assert.equal(await metricValue(server.url, "rill_completion_tokens_total"), before);
});
