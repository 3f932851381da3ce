import assert from "node:assert/strict";
import type OpenAI from "openai";
import { Ajv } from "ajv";
import { startServer } from "./_serve_harness.ts";

const MODEL = "stories260K";
const CHAT = [{ role: "user" as const, content: "Is this story happy?" }];
const SEEDS = [1, 2, 3, 4, 5, 6];

/** A sampled chat answer with vLLM's `structured_outputs`, whole or streamed. */
async function chat(client: OpenAI, structured: object, seed: number, stream = false) {
  const body = {
    model: MODEL,
    messages: CHAT,
    temperature: 1,
    max_tokens: 60,
    seed,
    structured_outputs: structured,
  };
  if (!stream) {
    const answer = await client.chat.completions.create(
      body as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming,
    );
    return answer.choices[0]!.message.content!;
  }
  let text = "";
  const chunks = await client.chat.completions.create(
    { ...body, stream: true } as OpenAI.Chat.ChatCompletionCreateParamsStreaming,
  );
  for await (const chunk of chunks) text += chunk.choices[0]?.delta.content ?? "";
  return text;
}

/** A sampled text completion of "The weather was", shaped by `constraint`'s fields. */
function weather(client: OpenAI, constraint: object) {
  return client.completions.create({
    model: MODEL,
    prompt: "The weather was",
    max_tokens: 20,
    temperature: 1,
    seed: 7,
    ...constraint,
  } as OpenAI.CompletionCreateParamsNonStreaming);
}

Deno.test("structured_outputs choice: every sampled answer is one of the texts, whole, streamed and as a completion", async () => {
  await using server = await startServer();
  const client = server.client();
  const choices = ["positive", "negative", "a little of both"];
  const seen = new Set<string>();
  for (const seed of SEEDS) {
    const whole = await chat(client, { choice: choices }, seed);
    assert.ok(choices.includes(whole), whole);
    assert.equal(await chat(client, { choice: choices }, seed, true), whole);
    seen.add(whole);
  }
  const completion = await weather(client, {
    structured_outputs: { choice: [" sunny", " rainy"] },
  });
  assert.ok([" sunny", " rainy"].includes(completion.choices[0]!.text));
  assert.equal(completion.choices[0]!.finish_reason, "stop");
});

Deno.test("structured_outputs regex and json: sampled answers match the pattern and validate", async () => {
  await using server = await startServer();
  const client = server.client();
  const pattern = "(Yes|No), [a-z]{2,8}( [a-z]{1,8}){0,3}\\.";
  for (const seed of SEEDS) {
    const text = await chat(client, { regex: pattern }, seed);
    assert.match(text, new RegExp(`^(?:${pattern})$`));
  }
  const schema = {
    type: "object",
    properties: {
      mood: { enum: ["happy", "sad"] },
      code: { type: "string", pattern: "^[A-Z]{2}-\\d{3}$" },
      note: { type: "string", pattern: '^[a-z "\\\\]{0,12}$' },
    },
    required: ["mood", "code", "note"],
    additionalProperties: false,
  };
  const validate = new Ajv({ strict: false }).compile(schema);
  for (const seed of SEEDS) {
    // vLLM takes the schema as an object or as its JSON text.
    const json = seed % 2 === 0 ? schema : JSON.stringify(schema);
    const text = await chat(client, { json }, seed);
    const value = JSON.parse(text);
    assert.ok(validate(value), `${text}: ${JSON.stringify(validate.errors)}`);
  }
});

Deno.test("a GBNF grammar (structured_outputs.grammar, or llama.cpp's grammar) shapes sampled answers, chat and completions", async () => {
  await using server = await startServer();
  const client = server.client();
  const gbnf = `root ::= verdict ", " words "."
verdict ::= "Yes" | "No"   # the answer first
words ::= [a-z]{2,8} (" " [a-z]{1,8}){0,3}`;
  const pattern = /^(Yes|No), [a-z]{2,8}( [a-z]{1,8}){0,3}\.$/;
  for (const seed of SEEDS) {
    const text = await chat(client, { grammar: gbnf }, seed);
    assert.match(text, pattern);
    assert.equal(await chat(client, { grammar: gbnf }, seed, true), text);
    // llama.cpp's field gives the same answer.
    const llamaCpp = await client.chat.completions.create({
      model: MODEL,
      messages: CHAT,
      temperature: 1,
      max_tokens: 60,
      seed,
      grammar: gbnf,
    } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    assert.equal(llamaCpp.choices[0]!.message.content, text);
  }
  const completion = await weather(client, { grammar: 'root ::= " " ("sunny" | "rainy") "."' });
  assert.ok([" sunny.", " rainy."].includes(completion.choices[0]!.text));
  assert.equal(completion.choices[0]!.finish_reason, "stop");
});

Deno.test("structured_outputs that cannot be honoured are 400s naming the field", async () => {
  await using server = await startServer();
  const refused = async (extra: object, param: string, message: RegExp) => {
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: MODEL, messages: CHAT, max_tokens: 8, ...extra }),
    });
    assert.equal(response.status, 400, JSON.stringify(extra));
    const { error } = await response.json();
    assert.equal(error.param, param);
    assert.match(error.message, message);
  };
  await refused(
    { structured_outputs: { regex: "(a)\\1" } },
    "structured_outputs.regex",
    /backreferences \('\\1'\) are not supported at offset 3/,
  );
  await refused(
    { structured_outputs: { grammar: 'root ::= "a" value' } },
    "structured_outputs.grammar",
    /structured_outputs.grammar: rule 'value' is not defined at 1:14/,
  );
  await refused(
    { grammar: 'root ::= "a"\nitem ::= item "b"' },
    "grammar",
    /grammar: rule 'item' refers to itself before reading a character/,
  );
  await refused(
    { grammar: 'root ::= "a"', structured_outputs: { regex: "a" } },
    "grammar",
    /cannot be combined with 'structured_outputs'/,
  );
  await refused(
    { structured_outputs: { choice: ["a"], regex: "b" } },
    "structured_outputs",
    /exactly one of choice, regex, json, grammar, json_object, it holds 2/,
  );
  await refused({ structured_outputs: { choice: [] } }, "structured_outputs.choice", /non-empty/);
  await refused(
    { structured_outputs: { json: "{nope" } },
    "structured_outputs.json",
    /is not valid JSON/,
  );
  await refused(
    { structured_outputs: { choice: ["a"] }, response_format: { type: "json_object" } },
    "structured_outputs",
    /cannot be combined with 'response_format'/,
  );
  await refused(
    { structured_outputs: { json: { type: "string", pattern: "a(?=b)" } } },
    "structured_outputs.json",
    /lookaround/,
  );
});
