/**
 * The first space of a completion, with SentencePiece tokenizer.json files whose decoder strips
 * the leading space of a text (stories260K's, converted from tok512.bin): `/v1/completions`,
 * chat and `rill generate` must give the text that reads on from the prompt.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { generate } from "../src/engine/generate.ts";
import { HfTokenizer } from "../src/tokenizer/hf_tokenizer.ts";
import { llama2cToHfTokenizer } from "../src/tokenizer/llama2c_to_hf.ts";
import { parseLlama2cTokenizer } from "../src/tokenizer/llama2c_tokenizer.ts";
import { loadService } from "../src/engine/load_service.ts";
import { loadModel } from "../src/graph/load_model.ts";
import { startServer, STORIES_ARCHIVE, STORIES_TOKENIZER } from "./_serve_harness.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** stories260K's tokenizer as a tokenizer.json in a temp folder. */
async function writeStoriesTokenizerJson(): Promise<{ dir: string; tokenizer: HfTokenizer }> {
  const files = llama2cToHfTokenizer(parseLlama2cTokenizer(await Deno.readFile(STORIES_TOKENIZER)));
  const dir = await Deno.makeTempDir({ prefix: "rill_first_space_" });
  await Deno.writeTextFile(join(dir, "tokenizer.json"), JSON.stringify(files.tokenizerJson));
  await Deno.writeTextFile(
    join(dir, "tokenizer_config.json"),
    JSON.stringify(files.tokenizerConfig),
  );
  return { dir, tokenizer: new HfTokenizer(files.tokenizerJson, files.tokenizerConfig) };
}

/** The greedy completion of `promptIds` as it reads after the prompt. */
async function greedyContinuation(
  tokenizer: HfTokenizer,
  promptIds: number[],
  maxTokens: number,
): Promise<string> {
  const model = await loadModel(STORIES_ARCHIVE);
  const ids: number[] = [];
  for await (
    const id of generate(model, tokenizer, promptIds, {
      maxTokens,
      sampling: { temperature: 0 },
    })
  ) ids.push(id);
  const before = tokenizer.decode(promptIds);
  const all = tokenizer.decode([...promptIds, ...ids]);
  assert.ok(all.startsWith(before));
  return all.slice(before.length);
}

Deno.test("completions and chat read on from the prompt with a Strip decoder", async () => {
  const { dir, tokenizer } = await writeStoriesTokenizerJson();
  try {
    const loaded = await loadService(STORIES_ARCHIVE, {
      modelId: "stories260K",
      tokenizer: join(dir, "tokenizer.json"),
    });
    await loaded.weightsReady;
    await using server = await startServer({}, loaded.service);
    const client = server.client();

    const expected = await greedyContinuation(tokenizer, tokenizer.encode("The dog"), 12);
    assert.match(expected, /^ \w/);
    const completion = await client.completions.create({
      model: "stories260K",
      prompt: "The dog",
      max_tokens: 12,
      temperature: 0,
    });
    assert.equal(completion.choices[0]!.text, expected);
    let streamed = "";
    const stream = await client.completions.create({
      model: "stories260K",
      prompt: "The dog",
      max_tokens: 12,
      temperature: 0,
      stream: true,
    });
    for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? "";
    assert.equal(streamed, expected);

    const messages = [{ role: "user" as const, content: "Tell me about a dog." }];
    const tokenized = await (await fetch(`${server.url}/tokenize`, {
      method: "POST",
      body: JSON.stringify({ messages }),
    })).json();
    const chat = await client.chat.completions.create({
      model: "stories260K",
      messages,
      max_tokens: 12,
      temperature: 0,
    });
    assert.equal(
      chat.choices[0]!.message.content,
      await greedyContinuation(tokenizer, tokenized.tokens, 12),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rill generate prints the completion that reads on from the prompt", async () => {
  const { dir, tokenizer } = await writeStoriesTokenizerJson();
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "cli/main.ts",
        "generate",
        "--model",
        STORIES_ARCHIVE,
        "--tokenizer",
        join(dir, "tokenizer.json"),
        "--prompt",
        "The dog",
        "--max-tokens",
        "12",
        "--temperature",
        "0",
        "--no-kernels",
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const expected = await greedyContinuation(tokenizer, tokenizer.encode("The dog"), 12);
    assert.equal(new TextDecoder().decode(stdout), `${expected}\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
