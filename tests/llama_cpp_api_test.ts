/**
 * llama.cpp's own API over HTTP, as its clients call it (llama.vim and llama.vscode post JSON
 * with curl and fetch; no client library): `/completion` against `/v1/completions`, its stream,
 * prompts of ids and of several texts, the options code completion uses, and `/infill` on a tiny
 * model whose vocabulary has Qwen2.5-Coder's fill-in-the-middle tokens.
 */
import assert from "node:assert/strict";
import type OpenAI from "openai";
import { startServer, storiesService, type TestServer } from "./_serve_harness.ts";
import { loadTinySmolLM2 } from "./_smollm2.ts";
import { FIM_RENAMES } from "./_hub.ts";
import type { InferenceService } from "../src/engine/service.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

async function post(url: string, body: object): Promise<{ status: number; json: Json }> {
  const response = await fetch(url, { method: "POST", body: JSON.stringify(body) });
  return { status: response.status, json: await response.json() };
}

/** The `data:` payloads of a stream, and whether it ended with `[DONE]`. */
async function streamed(url: string, body: object): Promise<{ frames: Json[]; done: boolean }> {
  const response = await fetch(url, {
    method: "POST",
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
  const data = (await response.text()).split("\n\n").filter((f) => f.startsWith("data: "))
    .map((f) => f.slice("data: ".length));
  const done = data.at(-1) === "[DONE]";
  return { frames: data.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d)), done };
}

const GREEDY = { temperature: 0, n_predict: 16 };

Deno.test("llama.cpp /completion answers as /v1/completions, whole and streamed, with llama.cpp's result fields", async () => {
  await using server = await startServer();
  const prompt = "Once upon a time";
  const expected = await server.client().completions.create({
    model: "stories260K",
    prompt,
    max_tokens: 16,
    temperature: 0,
  });
  const { status, json } = await post(`${server.url}/completion`, {
    prompt,
    ...GREEDY,
    return_tokens: true,
  });
  assert.equal(status, 200);
  assert.equal(json.content, expected.choices[0]!.text);
  assert.equal(json.stop, true);
  assert.equal(json.model, "stories260K");
  assert.equal(json.tokens_predicted, expected.usage!.completion_tokens);
  assert.equal(json.tokens_evaluated, expected.usage!.prompt_tokens);
  assert.equal(json.stop_type, "limit");
  assert.equal(json.stopping_word, "");
  assert.equal(json.truncated, false);
  assert.equal(json.prompt, prompt);
  assert.equal(json.generation_settings.n_predict, 16);
  const service = await storiesService();
  assert.equal(service.tokenizer.decode(json.tokens), json.content);
  for (
    const key of ["prompt_n", "prompt_ms", "predicted_n", "predicted_ms", "predicted_per_second"]
  ) {
    assert.equal(typeof json.timings[key], "number", key);
  }
  assert.equal(json.timings.predicted_n, 16);

  // `/completions` is the same endpoint.
  assert.equal(
    (await post(`${server.url}/completions`, { prompt, ...GREEDY })).json.content,
    json.content,
  );

  const { frames, done } = await streamed(`${server.url}/completion`, { prompt, ...GREEDY });
  assert.equal(done, false, "llama.cpp's stream has no [DONE]");
  const last = frames.at(-1)!;
  assert.equal(last.stop, true);
  assert.equal(last.content, "");
  assert.equal(last.tokens_predicted, 16);
  assert.ok(frames.slice(0, -1).every((f) => f.stop === false && f.index === 0));
  assert.equal(frames.map((f) => f.content).join(""), json.content);
});

Deno.test("llama.cpp /completion takes ids, texts and ids mixed, and several prompts answered in an array", async () => {
  await using server = await startServer();
  const service = await storiesService();
  const url = `${server.url}/completion`;
  const text = (await post(url, { prompt: "Once upon a time", ...GREEDY })).json;
  const ids = service.encodePrompt("Once upon a time");
  assert.equal((await post(url, { prompt: ids, ...GREEDY })).json.content, text.content);

  // A text first starts with BOS; ids are read as they are.
  const tail = service.tokenizer.encode(" there was", { addBos: false });
  const mixed = (await post(url, { prompt: ["Once upon a time", ...tail], ...GREEDY })).json;
  const byIds = (await post(url, { prompt: [...ids, ...tail], ...GREEDY })).json;
  assert.equal(mixed.content, byIds.content);
  assert.equal(mixed.tokens_evaluated, ids.length + tail.length);

  const many = (await post(url, { prompt: ["Once upon a time", [...ids, ...tail]], ...GREEDY }))
    .json;
  assert.ok(Array.isArray(many));
  assert.deepEqual(many.map((r: Json) => r.index), [0, 1]);
  assert.deepEqual(many.map((r: Json) => r.content), [text.content, byIds.content]);

  const { frames } = await streamed(url, { prompt: ["Once upon a time", "The cat"], ...GREEDY });
  const other = (await post(url, { prompt: "The cat", ...GREEDY })).json;
  for (const [index, expected] of [text, other].entries()) {
    const own = frames.filter((f) => f.index === index);
    assert.equal(own.map((f) => f.content).join(""), expected.content);
    assert.equal(own.at(-1)!.stop, true);
  }
});

Deno.test("llama.cpp /completion: stop words, n_probs, response_fields, samplers, XTC, top-n-sigma, DRY, logit_bias and n_predict 0", async () => {
  await using server = await startServer();
  const url = `${server.url}/completion`;
  const prompt = "Once upon a time";
  const plain = (await post(url, { prompt, temperature: 0, n_predict: 40 })).json;
  assert.ok(plain.content.includes("Lily"));

  const stopped = (await post(url, { prompt, temperature: 0, n_predict: 40, stop: ["Lily"] })).json;
  assert.equal(stopped.content, plain.content.slice(0, plain.content.indexOf("Lily")));
  assert.equal(stopped.stop_type, "word");
  assert.equal(stopped.stopping_word, "Lily");

  const probs = (await post(url, { prompt, ...GREEDY, n_probs: 3, return_tokens: true })).json;
  assert.equal(probs.completion_probabilities.length, 16);
  probs.completion_probabilities.forEach((entry: Json, i: number) => {
    assert.equal(entry.id, probs.tokens[i]);
    assert.equal(entry.top_logprobs.length, 3);
    // Greedy: the token taken is the most likely.
    assert.equal(entry.top_logprobs[0].id, entry.id);
    assert.ok(entry.logprob <= 0 && Array.isArray(entry.bytes));
  });
  const { frames } = await streamed(url, { prompt, ...GREEDY, n_probs: 3 });
  assert.equal(frames.flatMap((f) => f.completion_probabilities ?? []).length, 16);

  const picked = (await post(url, {
    prompt,
    ...GREEDY,
    response_fields: [
      "content",
      "timings/prompt_n",
      "generation_settings/n_predict",
      "nothing/here",
    ],
  })).json;
  assert.deepEqual(Object.keys(picked).sort(), [
    "content",
    "generation_settings/n_predict",
    "timings/prompt_n",
  ]);
  assert.equal(picked["generation_settings/n_predict"], 16);

  // Only top_k is kept: with k = 1 sampling at temperature 1 is greedy.
  const topK = (await post(url, { prompt, n_predict: 16, top_k: 1, samplers: ["top_k"] })).json;
  assert.equal(topK.content, probs.content);
  assert.equal(
    (await post(url, { prompt, n_predict: 16, top_k: 1, samplers: "k" })).json.content,
    probs.content,
  );

  // XTC always on with threshold 0 cuts every candidate but the least likely: of top_k's two,
  // the second most likely token, at every step.
  const second = (await post(url, {
    prompt,
    n_predict: 16,
    top_k: 2,
    top_p: 1,
    min_p: 0,
    xtc_probability: 1,
    xtc_threshold: 0,
    n_probs: 2,
    return_tokens: true,
  })).json;
  second.completion_probabilities.forEach((entry: Json) => {
    assert.equal(entry.id, entry.top_logprobs[1].id);
  });
  // Left out of `samplers`, XTC is off: top_k 1 alone is greedy again.
  const noXtc = (await post(url, {
    prompt,
    n_predict: 16,
    top_k: 1,
    xtc_probability: 1,
    xtc_threshold: 0,
    samplers: "k",
  })).json;
  assert.equal(noXtc.content, probs.content);
  // A top-n-sigma of almost nothing keeps the largest logit alone, whatever the temperature.
  const sigma = (await post(url, {
    prompt,
    n_predict: 16,
    temperature: 5,
    top_k: 0,
    min_p: 0,
    top_n_sigma: 1e-6,
  })).json;
  assert.equal(sigma.content, probs.content);

  // DRY with a huge multiplier: no answer token extends a repeat of two or more tokens of the
  // prompt and the answer (no text holds the breaker), where greedy alone repeats itself.
  const repeats = (ids: number[]) =>
    ids.filter((_, p) => {
      if (p < 2) return false;
      for (let end = 0; end < p - 1; end++) {
        if (ids[end + 1] === ids[p] && ids[end] === ids[p - 1] && ids[end - 1] === ids[p - 2]) {
          return true;
        }
      }
      return false;
    }).length;
  const promptIds = (await storiesService()).encodePrompt(prompt);
  const lengthy = { prompt, temperature: 0, n_predict: 120, ignore_eos: true, return_tokens: true };
  const greedyIds = [...promptIds, ...(await post(url, lengthy)).json.tokens];
  assert.ok(repeats(greedyIds) > 0, "greedy did not repeat itself");
  const dry = (await post(url, { ...lengthy, dry_multiplier: 1e4, dry_sequence_breakers: ["@@"] }))
    .json;
  assert.equal(repeats([...promptIds, ...dry.tokens]), 0);
  // Left out of `samplers`, DRY is off: greedy again.
  const dryOff = await post(url, {
    ...lengthy,
    dry_multiplier: 1e4,
    samplers: ["penalties", "temperature"],
  });
  assert.deepEqual([...promptIds, ...dryOff.json.tokens], greedyIds);

  const banned = (await post(url, {
    prompt,
    temperature: 0,
    n_predict: 40,
    logit_bias: [["Lily", false]],
  })).json;
  assert.ok(!banned.content.includes("Lily"));
  assert.notEqual(banned.content, plain.content);

  // n_predict 0 reads the prompt into the prefix cache; the next request reuses it.
  const long = `${prompt} ${"there was a little girl who loved to play. ".repeat(6)}`;
  const warm = (await post(url, { prompt: long, n_predict: 0 })).json;
  assert.equal(warm.content, "");
  assert.equal(warm.tokens_predicted, 0);
  const again = (await post(url, { prompt: long, ...GREEDY })).json;
  assert.ok(again.timings.cache_n > 0, `cache_n ${again.timings.cache_n}`);
  assert.equal(again.timings.prompt_n + again.timings.cache_n, again.tokens_evaluated);

  // A cap past the context is cut to it, and the answer says it ran out of context.
  const service = await storiesService();
  const filled = (await post(url, { prompt, temperature: 0, n_predict: 100_000, ignore_eos: true }))
    .json;
  assert.equal(filled.tokens_evaluated + filled.tokens_predicted, service.contextLength);
  assert.equal(filled.truncated, true);
  assert.equal(filled.stop_type, "limit");
});

Deno.test("OpenAI's endpoints take llama.cpp's samplers as extensions, answering as /completion does", async () => {
  await using server = await startServer();
  const prompt = "Once upon a time";
  const cases = [
    { dry_multiplier: 1e4, dry_sequence_breakers: ["@@"], temperature: 0 },
    { mirostat: 2, mirostat_tau: 0.01, temperature: 0.8, seed: 3 },
    { mirostat: 1, mirostat_tau: 3, temperature: 1, seed: 4 },
    { typical_p: 0.2, temperature: 1, seed: 5 },
    { xtc_probability: 1, xtc_threshold: 0.05, top_k: 3, temperature: 1, seed: 6 },
    { top_n_sigma: 0.5, temperature: 1.5, seed: 7 },
  ];
  const texts: string[] = [];
  for (const extra of cases) {
    // llama.cpp's defaults made explicit, so that both endpoints sample alike.
    const body = { top_k: 0, top_p: 1, min_p: 0, ...extra };
    const native = (await post(`${server.url}/completion`, {
      prompt,
      n_predict: 120,
      ignore_eos: true,
      ...body,
    })).json;
    const openai = await server.client().completions.create({
      model: "stories260K",
      prompt,
      max_tokens: 120,
      ignore_eos: true,
      ...body,
    } as unknown as OpenAI.CompletionCreateParamsNonStreaming);
    assert.equal(openai.choices[0]!.text, native.content, JSON.stringify(extra));
    texts.push(native.content);
  }
  // DRY moves greedy off its repeats; Mirostat aiming at no surprise is greedy.
  const greedy = (await post(`${server.url}/completion`, {
    prompt,
    n_predict: 120,
    ignore_eos: true,
    temperature: 0,
  })).json.content;
  assert.notEqual(texts[0], greedy);
  assert.equal(texts[1], greedy);
  const refused = await fetch(`${server.url}/v1/completions`, {
    method: "POST",
    body: JSON.stringify({ prompt, dry_multiplier: 1, dry_sequence_breakers: [] }),
  });
  assert.equal(refused.status, 400);
  assert.equal((await refused.json()).error.param, "dry_sequence_breakers");
});

Deno.test("llama.cpp /completion ends code completion at n_indent and t_max_predict_ms", async () => {
  await using server = await startServer();
  const url = `${server.url}/completion`;
  const prompt = "Once upon a time";
  const whole = (await post(url, { prompt, temperature: 0, n_predict: 60 })).json;
  const firstLine = whole.content.slice(0, whole.content.indexOf("\n") + 1);
  assert.ok(firstLine.length > 1);
  const indented = (await post(url, { prompt, temperature: 0, n_predict: 60, n_indent: 4 })).json;
  assert.equal(indented.content, firstLine);
  assert.equal(indented.stop_type, "limit");
  assert.equal(indented.has_new_line, true);
  const timed = (await post(url, { prompt, temperature: 0, n_predict: 60, t_max_predict_ms: 1 }))
    .json;
  assert.ok(whole.content.startsWith(timed.content) && timed.content.endsWith("\n"));
  assert.ok(timed.tokens_predicted < whole.tokens_predicted);
});

Deno.test("llama.cpp /completion refuses what it cannot do, naming the field, and ignores fields llama.cpp does not list", async () => {
  await using server = await startServer();
  const url = `${server.url}/completion`;
  const refused = async (body: object, param: string, pattern: RegExp) => {
    const { status, json } = await post(url, { prompt: "Once", n_predict: 2, ...body });
    assert.equal(status, 400, JSON.stringify(body));
    assert.equal(json.error.param, param, JSON.stringify(json));
    assert.match(json.error.message, pattern);
  };
  await refused({ mirostat: 3 }, "mirostat", /between 0 and 2/);
  await refused({ mirostat: 2, mirostat_tau: -1 }, "mirostat_tau", /between 0 and 100/);
  await refused({ typical_p: 1.5 }, "typical_p", /between 0 and 1/);
  await refused({ n_probs: 30 }, "n_probs", /between 0 and 20/);
  await refused({ prompt: [3, -1] }, "prompt[1]", /token id/);
  await refused({ prompt: [3, 100_000] }, "prompt[1]", /outside the vocabulary/);
  await refused({ prompt: "" }, "prompt", /must not be empty/);
  await refused({ samplers: ["top_k", "warp"] }, "samplers", /unknown sampler 'warp'/);
  await refused({ logit_bias: [[1, "x"]] }, "logit_bias.1", /between -100 and 100, or false/);
  await refused({ dry_multiplier: 1, dry_base: 0.5 }, "dry_base", /between 1 and/);
  await refused(
    { dry_multiplier: 1, dry_sequence_breakers: "\n" },
    "dry_sequence_breakers",
    /a list of 1 to 64 non-empty strings/,
  );
  await refused({ xtc_probability: 2 }, "xtc_probability", /between 0 and 1/);
  await refused(
    { input_extra: null, prompt: "x".repeat(100_000) },
    "prompt",
    /maximum context length/,
  );
  const { status, json } = await post(url, {
    prompt: "Once",
    n_predict: 2,
    rep_pen: 1.2,
    mirostat: 0,
  });
  assert.equal(status, 200, JSON.stringify(json));
  const missing = await post(url, { n_predict: 2 });
  assert.equal(missing.status, 400);
  assert.equal(missing.json.error.param, "prompt");
  // stories260K has no fill-in-the-middle tokens.
  const infill = await post(`${server.url}/infill`, { input_prefix: "a", input_suffix: "b" });
  assert.equal(infill.status, 400);
  assert.equal(infill.json.error.param, "input_suffix");
  assert.match(infill.json.error.message, /cannot fill in the middle/);
});

Deno.test("llama.cpp /props, /apply-template, /tokenize with content and pieces, /detokenize", async () => {
  await using server = await startServer();
  const service = await storiesService();
  const props = await (await fetch(`${server.url}/props`)).json();
  assert.equal(props.default_generation_settings.n_ctx, service.contextLength);
  assert.equal(props.model_path, "stories260K");
  assert.equal(props.default_generation_settings.params.top_p, 0.95);
  assert.equal(props.modalities.vision, false);
  const messages = [{ role: "user", content: "Hello" }];
  const applied = (await post(`${server.url}/apply-template`, { messages })).json;
  const tokenized = (await post(`${server.url}/tokenize`, { messages })).json;
  assert.deepEqual(service.encodePrompt(applied.prompt), tokenized.tokens);

  const plain = (await post(`${server.url}/tokenize`, { content: "Once upon" })).json;
  assert.deepEqual(plain.tokens, service.tokenizer.encode("Once upon", { addBos: false }));
  const special =
    (await post(`${server.url}/tokenize`, { content: "Once upon", add_special: true }))
      .json;
  assert.deepEqual(special.tokens, service.encodePrompt("Once upon"));
  const pieces = (await post(`${server.url}/tokenize`, { content: "Once upon", with_pieces: true }))
    .json;
  assert.deepEqual(pieces.tokens.map((t: Json) => t.id), plain.tokens);
  // SentencePiece's pieces: the text's first word carries the space it adds.
  assert.equal(pieces.tokens.map((t: Json) => t.piece).join(""), " Once upon");
  // A piece that is part of a character is its bytes (stories260K spells 日 byte by byte).
  const bytes = (await post(`${server.url}/tokenize`, { content: "日", with_pieces: true })).json;
  const utf8 = new TextEncoder();
  assert.deepEqual(
    bytes.tokens.flatMap((t: Json) =>
      typeof t.piece === "string" ? [...utf8.encode(t.piece)] : t.piece
    ),
    [...utf8.encode(" 日")],
  );
  assert.ok(bytes.tokens.some((t: Json) => Array.isArray(t.piece)));
  const detokenized = (await post(`${server.url}/detokenize`, { tokens: plain.tokens })).json;
  assert.equal(detokenized.content, service.tokenizer.decode(plain.tokens));
  assert.equal(detokenized.content, detokenized.prompt);
});

Deno.test("llama.cpp /slots shows each place of the batch and the sequence running in it; fail_on_no_slot", async () => {
  await using server = await startServer({ maxBatch: 2 });
  const service = await storiesService();
  const idle = await (await fetch(`${server.url}/slots`)).json();
  assert.deepEqual(idle.map((s: Json) => [s.id, s.id_task, s.is_processing]), [
    [0, -1, false],
    [1, -1, false],
  ]);
  assert.equal(idle[0].n_ctx, service.contextLength);
  assert.equal(idle[0].next_token.has_next_token, false);

  // Polled while a long answer runs: the turns between steps let the polls in.
  const n_predict = 400;
  const answer = post(`${server.url}/completion`, {
    prompt: "Once upon a time",
    ...GREEDY,
    n_predict,
    ignore_eos: true,
  });
  let finished = false;
  answer.finally(() => (finished = true));
  const busy: Json[] = [];
  while (!finished) {
    const slots = await (await fetch(`${server.url}/slots`)).json();
    busy.push(...slots.filter((s: Json) => s.is_processing));
  }
  const { json } = await answer;
  assert.equal(json.tokens_predicted, n_predict);
  assert.ok(busy.length > 0, "no poll saw the answer running");
  for (const slot of busy) {
    assert.equal(slot.id, 0);
    assert.ok(slot.id_task > 0);
    assert.equal(slot.n_prompt_tokens, json.tokens_evaluated);
    assert.equal(slot.next_token.n_decoded + slot.next_token.n_remain, n_predict);
    if (slot.next_token.n_decoded > 0) {
      assert.equal(slot.n_past, slot.n_prompt_tokens + slot.next_token.n_decoded - 1);
    }
  }
  assert.equal(new Set(busy.map((s) => s.id_task)).size, 1);

  // Both places taken: a new request would wait.
  const holders = [server.state.queue.admit(), server.state.queue.admit()];
  await Promise.all(holders.map((h) => h.ready));
  const full = await fetch(`${server.url}/slots?fail_on_no_slot=1`);
  assert.equal(full.status, 503);
  assert.match((await full.json()).error.message, /no slot available/);
  const status = async (query: string) => {
    const response = await fetch(`${server.url}/slots${query}`);
    await response.body?.cancel();
    return response.status;
  };
  assert.equal(await status(""), 200);
  holders[0]!.release();
  assert.equal(await status("?fail_on_no_slot=1"), 200);
  holders[1]!.release();
});

/** A text's ids without BOS, and a special token's id by its name. */
function textIds(service: InferenceService) {
  const encode = (text: string) => service.tokenizer.encode(text, { addBos: false });
  return { encode, special: (name: string) => encode(name)[0]! };
}

/** The repository header llama.cpp writes ahead of the prefix when `input_extra` is empty. */
function noFiles(service: InferenceService): number[] {
  const { encode, special } = textIds(service);
  return [
    special("<repo_name>"),
    ...encode("myproject\n"),
    special("<file_sep>"),
    ...encode("filename\n"),
  ];
}

/** The coder model's greedy answer of `maxTokens` to a prompt of ids, by /v1/completions. */
function greedyCompletion(server: TestServer, ids: number[], maxTokens: number) {
  return server.client().completions.create({
    model: "coder",
    prompt: ids,
    max_tokens: maxTokens,
    temperature: 0,
  });
}

const PREFIX = "def add(a, b):\n";
const LINE = "    return";
const SUFFIX = "\n\nprint(add(1, 2))\n";

Deno.test("llama.cpp /infill lays out the project, prefix, cursor line and suffix as llama.cpp does, whole and streamed", async () => {
  const service = await loadTinySmolLM2("coder", undefined, FIM_RENAMES);
  await using server = await startServer({}, service);
  const { encode, special } = textIds(service);
  // SmolLM2's vocabulary has StarCoder's repository and file tokens: the repository layout.
  const ids = [
    special("<repo_name>"),
    ...encode("myproject\n"),
    special("<file_sep>"),
    ...encode("util.py\n"),
    ...encode("def sub(a, b):\n    return a - b\n"),
    special("<file_sep>"),
    ...encode("filename\n"),
    special("<|fim_prefix|>"),
    ...encode(PREFIX),
    ...encode(LINE),
    special("<|fim_suffix|>"),
    ...encode(SUFFIX),
    special("<|fim_middle|>"),
  ];
  const expected = await greedyCompletion(server, ids, 8);
  const body = {
    input_prefix: PREFIX,
    input_suffix: SUFFIX,
    prompt: LINE,
    input_extra: [{ filename: "util.py", text: "def sub(a, b):\n    return a - b\n" }],
    n_predict: 8,
    temperature: 0,
    // What llama.vim sends besides.
    top_k: 40,
    top_p: 0.9,
    samplers: ["top_k", "top_p", "infill"],
    cache_prompt: true,
    t_max_prompt_ms: 500,
    t_max_predict_ms: 60_000,
    response_fields: [
      "content",
      "tokens_evaluated",
      "timings/prompt_n",
      "timings/cache_n",
      "timings/predicted_n",
      "tokens_cached",
      "truncated",
    ],
  };
  const greedy = { ...body, samplers: ["top_k"], top_k: 1 };
  const { status, json } = await post(`${server.url}/infill`, greedy);
  assert.equal(status, 200, JSON.stringify(json));
  assert.equal(json.content, expected.choices[0]!.text);
  assert.equal(json.tokens_evaluated, ids.length);
  // The completion above left the prompt's blocks in the prefix cache.
  assert.ok(json["timings/cache_n"] > 0);
  assert.equal(json["timings/prompt_n"] + json["timings/cache_n"], ids.length);
  assert.equal(json.tokens_cached, ids.length + expected.usage!.completion_tokens);
  assert.equal(json.truncated, false);
  const { frames } = await streamed(`${server.url}/infill`, greedy);
  assert.equal(frames.slice(0, -1).map((f) => f.content).join(""), json.content);
  // llama.vim's own request, sampled: an answer within its cap.
  const sampled = await post(`${server.url}/infill`, { ...body, temperature: undefined });
  assert.equal(sampled.status, 200);
  assert.equal(typeof sampled.json.content, "string");
});

Deno.test("llama.cpp /infill with --spm-infill lays out the suffix before the prefix", async () => {
  const service = await loadTinySmolLM2("coder", undefined, FIM_RENAMES);
  await using server = await startServer({ spmInfill: true }, service);
  const { encode, special } = textIds(service);
  const ids = [
    ...noFiles(service),
    special("<|fim_suffix|>"),
    ...encode(SUFFIX),
    special("<|fim_prefix|>"),
    ...encode(PREFIX),
    ...encode(LINE),
    special("<|fim_middle|>"),
  ];
  const expected = await greedyCompletion(server, ids, 8);
  const { status, json } = await post(`${server.url}/infill`, {
    input_prefix: PREFIX,
    input_suffix: SUFFIX,
    prompt: LINE,
    n_predict: 8,
    temperature: 0,
  });
  assert.equal(status, 200, JSON.stringify(json));
  assert.equal(json.tokens_evaluated, ids.length);
  assert.equal(json.prompt, service.tokenizer.decode(ids));
  assert.equal(json.content, expected.choices[0]!.text);
});

Deno.test("llama.cpp /infill keeps the end of a long prefix and the start of a long suffix, reading no more than it keeps", async () => {
  const service = await loadTinySmolLM2("coder", undefined, FIM_RENAMES);
  await using server = await startServer({}, service);
  const window = Math.min(2048, Math.floor(service.contextLength / 2));
  const quarter = Math.floor(window / 4);
  // Far more text than the context holds: cut, not refused, and not tokenized whole.
  const prefix = "x = 1\n".repeat(200_000);
  const suffix = "y = 2\n".repeat(200_000);
  const started = performance.now();
  const { status, json } = await post(`${server.url}/infill`, {
    input_prefix: prefix,
    input_suffix: suffix,
    n_predict: 4,
    temperature: 0,
    return_tokens: true,
  });
  assert.equal(status, 200, JSON.stringify(json));
  const { encode, special } = textIds(service);
  const ids = [
    ...noFiles(service),
    special("<|fim_prefix|>"),
    ...encode("x = 1\n".repeat(3 * quarter)).slice(-3 * quarter),
    special("<|fim_suffix|>"),
    ...encode("y = 2\n".repeat(quarter)).slice(0, quarter - 2),
    special("<|fim_middle|>"),
  ];
  assert.equal(json.tokens_evaluated, ids.length);
  const expected = await greedyCompletion(server, ids, 4);
  assert.equal(json.content, expected.choices[0]!.text);
  assert.ok(performance.now() - started < 20_000);
});
