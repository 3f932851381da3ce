import assert from "node:assert/strict";
import { loadKernels } from "../../kernels/mod.ts";
import { loadModel } from "../graph/load_model.ts";
import { generate } from "./generate.ts";
import { loadService, modelScheduler } from "./load_service.ts";
import { Session } from "./session.ts";
import { GrammarConstraint } from "./constrain/constraint.ts";
import { compileJsonSchema } from "./constrain/json_schema.ts";
import { type GenerationEvent, InferenceService } from "./service.ts";

const FIXTURES = new URL("../../../shared/fixtures/stories260K/", import.meta.url);

let loaded: Promise<InferenceService> | undefined;
function stories(): Promise<InferenceService> {
  loaded ??= loadService(new URL("nnef/stories260K_f32.nnef.tgz", FIXTURES).pathname, {
    modelId: "stories260K",
    tokenizer: new URL("tok512.bin", FIXTURES).pathname,
    prefillChunk: 2,
  }).then(async (l) => {
    await l.weightsReady;
    return l.service;
  });
  return loaded;
}

async function collect(iterable: AsyncIterable<GenerationEvent>): Promise<GenerationEvent[]> {
  const events: GenerationEvent[] = [];
  for await (const event of iterable) events.push(event);
  return events;
}

Deno.test("InferenceService.generate prefills in chunks and matches the reference greedy text", async () => {
  const service = await stories();
  const expected = (await Deno.readTextFile(new URL("greedy64.txt", FIXTURES))).trim();
  const prompt = service.encodePrompt("Once upon a time");
  // llama2.c's 64 steps count the prompt after BOS.
  const steps = 64 - (prompt.length - 1);
  const events = await collect(
    service.generate(prompt, { sampling: { temperature: 0 }, stop: [], maxTokens: steps }),
  );
  const done = events.at(-1)!;
  assert.equal(done.type, "done");
  const text = events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("");
  assert.equal(`Once upon a time${text}`.trim(), expected);
  assert.ok(done.type === "done" && done.completionTokens === steps);
  assert.ok(done.type === "done" && done.finishReason === "length");
  assert.ok(done.type === "done" && done.stopString === null);
});

Deno.test("InferenceService.generate stops at a stop string and reports finish stop and the string", async () => {
  const service = await stories();
  const prompt = service.encodePrompt("Once upon a time");
  const events = await collect(
    service.generate(prompt, {
      sampling: { temperature: 0 },
      stop: ["dragon", "Lily"],
      maxTokens: 50,
    }),
  );
  const text = events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("");
  assert.equal(text, ", there was a little girl named ");
  const done = events.at(-1)!;
  assert.ok(done.type === "done" && done.finishReason === "stop");
  assert.ok(done.type === "done" && done.stopString === "Lily");
});

Deno.test("InferenceService.generate stops during prefill when aborted", async () => {
  const service = await stories();
  const prompt = service.encodePrompt("Once upon a time there was a little cat. ".repeat(8));
  const controller = new AbortController();
  const events: GenerationEvent[] = [];
  setTimeout(() => controller.abort(new DOMException("gone", "AbortError")), 1);
  await assert.rejects(async () => {
    for await (
      const event of service.generate(prompt, {
        sampling: { temperature: 0 },
        stop: [],
        maxTokens: 8,
        signal: controller.signal,
        onFirstToken: () => assert.fail("no token may be sampled"),
      })
    ) events.push(event);
  }, /gone/);
  assert.deepEqual(events, []);
});

Deno.test("InferenceService.generate rejects prompts that fill the context", async () => {
  const service = await stories();
  const prompt = new Array(service.contextLength).fill(300);
  await assert.rejects(
    collect(service.generate(prompt, { sampling: {}, stop: [], maxTokens: 1 })),
    RangeError,
  );
});

Deno.test("InferenceService.generate with adaptive prefill steps gives the same text", async () => {
  const fixed = await stories();
  const { service: adaptive, weightsReady } = await loadService(
    new URL("nnef/stories260K_f32.nnef.tgz", FIXTURES).pathname,
    { modelId: "s", tokenizer: new URL("tok512.bin", FIXTURES).pathname, prefillBudgetMs: 5 },
  );
  await weightsReady;
  const prompt = fixed.encodePrompt(
    "Once upon a time there was a little cat who liked milk. ".repeat(6),
  );
  const run = async (service: InferenceService) =>
    (await collect(
      service.generate(prompt, { sampling: { temperature: 0 }, stop: [], maxTokens: 12 }),
    ))
      .flatMap((e) => (e.type === "text" ? [e.text] : [])).join("");
  assert.equal(await run(adaptive), await run(fixed));
});

Deno.test("InferenceService on WASM kernels gives the runtime's greedy text for the Q4_0 model", async () => {
  const kernels = await loadKernels({ threads: 1 });
  try {
    const archive = new URL("nnef/stories260K_q40_sdpa.nnef.tgz", FIXTURES).pathname;
    const { service, weightsReady } = await loadService(archive, {
      modelId: "q40",
      tokenizer: new URL("tok512.bin", FIXTURES).pathname,
      kernels,
    });
    await weightsReady;
    const prompt = service.encodePrompt("Once upon a time");
    const text = (await collect(
      service.generate(prompt, { sampling: { temperature: 0 }, stop: [], maxTokens: 24 }),
    )).flatMap((e) => (e.type === "text" ? [e.text] : [])).join("");
    const model = await loadModel(archive, { kernels });
    const ids: number[] = [];
    const session = new Session(model, { kernels });
    for await (
      const id of generate(model, service.tokenizer, prompt, {
        maxTokens: 24,
        sampling: { temperature: 0 },
        session,
      })
    ) ids.push(id);
    assert.equal(text, service.tokenizer.decode(ids));
    assert.ok(text.length > 20);
  } finally {
    kernels.close();
  }
});

Deno.test("InferenceService.generate ends at every end id of the tokenizer", async () => {
  const reference = await stories();
  const tokenizer = reference.tokenizer;
  const service = new InferenceService({
    modelId: "two-ends",
    tokenizer: {
      vocabSize: tokenizer.vocabSize,
      bos: tokenizer.bos,
      eos: [2, 300],
      encode: (text, options) => tokenizer.encode(text, options),
      decode: (ids) => tokenizer.decode(ids),
      tokenBytes: (id) => tokenizer.tokenBytes(id),
    },
    renderChat: (messages) => reference.renderChat(messages),
    model: modelScheduler(
      await loadModel(new URL("nnef/stories260K_f32.nnef.tgz", FIXTURES).pathname),
    ),
  });
  const events = await collect(service.generate(service.encodePrompt("Once upon a time"), {
    sampling: { temperature: 0, logitBias: new Map([[300, 100]]) },
    stop: [],
    maxTokens: 8,
  }));
  assert.deepEqual(events.map((e) => e.type), ["done"]);
  const done = events[0]!;
  assert.ok(done.type === "done" && done.finishReason === "stop" && done.completionTokens === 0);
});

Deno.test("InferenceService.generate reports each token's logprobs once, stop string tokens too", async () => {
  const service = await stories();
  const prompt = service.encodePrompt("Once upon a time");
  const events = await collect(
    service.generate(prompt, {
      sampling: { temperature: 0 },
      stop: ["Lily"],
      maxTokens: 50,
      logprobs: 3,
    }),
  );
  const done = events.at(-1)!;
  assert.ok(done.type === "done");
  const entries = events.flatMap((e) => e.logprobs ?? []);
  assert.deepEqual(entries.map((e) => e.id), done.ids);
  for (const entry of entries) {
    assert.equal(entry.top.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.equal(entry.top[0]!.id, entry.id);
    assert.equal(entry.top[0]!.logprob, entry.logprob);
    assert.ok(entry.logprob <= 0 && entry.top[1]!.logprob <= entry.logprob);
  }
  const text = events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("");
  assert.equal(text, ", there was a little girl named ");
  assert.ok(service.tokenizer.decode(done.ids).endsWith("Lily"));
});

Deno.test("InferenceService.generate scores a prompt: each token's logprob is what generating it gave", async () => {
  const service = await stories();
  const prompt = service.encodePrompt("Once upon a time");
  const generated = await collect(
    service.generate(prompt, {
      sampling: { temperature: 0 },
      stop: [],
      maxTokens: 20,
      logprobs: 2,
    }),
  );
  const done = generated.at(-1)!;
  assert.ok(done.type === "done");
  const expected = generated.flatMap((e) => e.type === "prompt" ? [] : e.logprobs ?? []);
  const whole = [...prompt, ...done.ids];
  const events = await collect(
    service.generate(whole, {
      sampling: { temperature: 0 },
      stop: [],
      maxTokens: 0,
      promptLogprobs: 2,
    }),
  );
  assert.deepEqual(events.map((e) => e.type), ["prompt", "done"]);
  const scored = events[0]!.type === "prompt" ? events[0]!.logprobs : [];
  assert.deepEqual(scored.map((e) => e.id), whole.slice(1));
  // The entries of the generated tokens: computed in other steps, the same numbers.
  assert.deepEqual(scored.slice(prompt.length - 1), expected);
  const end = events[1]!;
  assert.ok(end.type === "done" && end.completionTokens === 0 && end.cachedTokens === 0);
});

Deno.test("a 512-position model holds 512 tokens: the last one is sampled, never run", async () => {
  const service = await stories();
  assert.equal(service.contextLength, 512);
  const prompt = [1, ...new Array(510).fill(300)];
  const events = await collect(
    service.generate(prompt, { sampling: { temperature: 0 }, stop: [], maxTokens: 8 }),
  );
  const done = events.at(-1)!;
  assert.ok(done.type === "done" && done.completionTokens === 1 && done.finishReason === "length");
});

Deno.test("InferenceService.generate under a constraint ends with a whole document, even when short of tokens", async () => {
  const service = await stories();
  const schema = {
    type: "object",
    properties: {
      title: { type: "string" },
      tags: { type: "array", items: { enum: ["x", "yz"] } },
    },
    required: ["title", "tags"],
    additionalProperties: false,
  };
  const grammar = service.vocabGrammar("test schema", () => compileJsonSchema(schema));
  for (const [seed, maxTokens] of [[1, 20], [2, 60], [3, 200]] as const) {
    const constraint = new GrammarConstraint(grammar, (id) => service.tokenizer.tokenBytes(id));
    const events = await collect(
      service.generate(service.encodePrompt("Once upon a time"), {
        sampling: { temperature: 1, seed },
        stop: [],
        maxTokens,
        constraint,
      }),
    );
    const text = events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("");
    const value = JSON.parse(text);
    assert.deepEqual(Object.keys(value), ["title", "tags"]);
    const done = events.at(-1)!;
    assert.ok(
      done.type === "done" && done.finishReason === "stop" && done.completionTokens <= maxTokens,
    );
    assert.ok(constraint.stats.masks > 0);
  }
});

Deno.test("InferenceService.generate ends code completion at a line indented too little, or at a newline once out of time", async () => {
  const service = await stories();
  const prompt = service.encodePrompt("Once upon a time");
  const run = async (options: { minIndent?: number; timeLimitMs?: number }) => {
    const events = await collect(
      service.generate(prompt, {
        sampling: { temperature: 0 },
        stop: [],
        maxTokens: 60,
        ...options,
      }),
    );
    const done = events.at(-1)!;
    assert.ok(done.type === "done");
    const text = events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("");
    return { text, done };
  };
  const whole = await run({});
  const firstLine = whole.text.slice(0, whole.text.indexOf("\n") + 1);
  assert.ok(firstLine.length > 1 && whole.text.length > firstLine.length + 1);

  // The reference's second line ("Lily ...") starts unindented.
  const indented = await run({ minIndent: 2 });
  assert.equal(indented.text, firstLine);
  assert.equal(indented.done.finishReason, "length");
  assert.ok(indented.done.completionTokens < whole.done.completionTokens);

  // With no time left, the token that writes the newline (a token of its own here) is the last.
  const timed = await run({ timeLimitMs: 0 });
  assert.equal(timed.text, firstLine);
  assert.equal(timed.done.finishReason, "length");
  const untimed = await run({ timeLimitMs: 60_000 });
  assert.equal(untimed.text, whole.text);
});
