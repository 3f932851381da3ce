import assert from "node:assert/strict";
import { Ajv } from "ajv";
import { generateObject, generateText, jsonSchema, tool } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ChatOpenAI } from "@langchain/openai";
import { z } from "zod";
import addFormats from "ajv-formats";
import { startServer } from "./_serve_harness.ts";
import { smolLM2Service } from "./_smollm2.ts";

const ajv = new Ajv({ strict: false });
(addFormats as unknown as (a: Ajv) => void)(ajv);

const Recipe = z.object({
  title: z.string(),
  servings: z.int().min(1).max(12),
  difficulty: z.enum(["easy", "medium", "hard"]),
  ingredients: z.array(z.object({ name: z.string(), grams: z.number() })).max(4),
  vegetarian: z.boolean(),
});
// ajv's default draft is 07; the schema is the same without the 2020-12 `$schema`.
const { $schema: _, ...RECIPE_SCHEMA } = z.toJSONSchema(Recipe);

/** The AI SDK's OpenAI-compatible provider for the server at `url`, told it takes schemas. */
function structuredProvider(url: string) {
  return createOpenAICompatible({
    name: "rill",
    baseURL: `${url}/v1`,
    apiKey: "none",
    supportsStructuredOutputs: true,
  });
}

Deno.test("AI SDK generateObject (openai-compatible provider) returns objects that validate", async () => {
  await using server = await startServer();
  const provider = structuredProvider(server.url);
  const validate = ajv.compile(RECIPE_SCHEMA);
  for (const seed of [1, 2, 3]) {
    const { object } = await generateObject({
      model: provider.chatModel("stories260K"),
      schema: Recipe,
      prompt: "A recipe, please.",
      maxOutputTokens: 160,
      seed,
      maxRetries: 0,
    });
    assert.ok(validate(object), JSON.stringify(validate.errors));
    assert.deepEqual(Recipe.parse(object), object);
  }
});

Deno.test("AI SDK generateObject with zod's records, discriminated unions, tuples and nullables returns objects that parse", async () => {
  await using server = await startServer();
  const provider = structuredProvider(server.url);
  const Inventory = z.object({
    counts: z.record(z.string().max(8), z.int().min(0).max(99)),
    pet: z.discriminatedUnion("kind", [
      z.object({ kind: z.literal("cat"), lives: z.int().min(1).max(9) }),
      z.object({ kind: z.literal("dog"), good: z.boolean() }),
    ]),
    at: z.tuple([z.int().min(0).max(9), z.int().min(0).max(9)]),
    note: z.string().max(12).nullable(),
  });
  let entries = 0;
  for (const seed of [1, 2, 3, 4]) {
    const { object } = await generateObject({
      model: provider.chatModel("stories260K"),
      schema: Inventory,
      prompt: "An inventory, please.",
      maxOutputTokens: 200,
      seed,
      maxRetries: 0,
    });
    assert.deepEqual(Inventory.parse(object), object);
    entries += Object.keys(object.counts).length;
  }
  // The record's keys are the model's, as many as it writes.
  assert.ok(entries > 4, `${entries} entries`);
});

Deno.test("AI SDK generateText with a required tool returns a call whose input validates (SmolLM2 template)", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const provider = createOpenAICompatible({
    name: "rill",
    baseURL: `${server.url}/v1`,
    apiKey: "none",
  });
  const parameters = {
    type: "object",
    properties: {
      city: { type: "string", maxLength: 30 },
      when: { type: "string", format: "date" },
      alerts: { type: "boolean" },
    },
    required: ["city", "when", "alerts"],
    additionalProperties: false,
  } as const;
  const validate = ajv.compile(parameters);
  for (const seed of [4, 5]) {
    const result = await generateText({
      model: provider.chatModel("smollm2-tiny"),
      tools: {
        forecast: tool({ description: "Weather forecast", inputSchema: jsonSchema(parameters) }),
      },
      toolChoice: "required",
      prompt: "Will it rain in Lyon tomorrow?",
      maxOutputTokens: 80,
      seed,
      maxRetries: 0,
    });
    assert.equal(result.finishReason, "tool-calls");
    assert.equal(result.toolCalls.length >= 1, true);
    for (const call of result.toolCalls) {
      assert.equal(call.toolName, "forecast");
      assert.ok(validate(call.input), JSON.stringify(validate.errors));
    }
  }
});

Deno.test("LangChain withStructuredOutput (json schema and function calling) returns valid objects (SmolLM2 template)", async () => {
  await using server = await startServer({}, await smolLM2Service());
  const validate = ajv.compile(RECIPE_SCHEMA);
  for (const method of ["jsonSchema", "functionCalling"] as const) {
    for (const seed of [6]) {
      const model = new ChatOpenAI({
        model: "smollm2-tiny",
        apiKey: "none",
        configuration: { baseURL: `${server.url}/v1` },
        maxRetries: 0,
        maxTokens: 100,
        modelKwargs: { seed },
      });
      const structured = model.withStructuredOutput(Recipe, {
        method,
        name: "recipe",
      });
      const value = await structured.invoke("A recipe, please.");
      assert.ok(
        validate(value),
        `${method}: ${JSON.stringify(value)} ${JSON.stringify(validate.errors)}`,
      );
    }
  }
});
