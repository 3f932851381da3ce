import assert from "node:assert/strict";
import { FIM_RENAMES, SMOLLM2_TOKENIZER, withFimNames } from "../../tests/_hub.ts";
import { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import { parseLlama2cTokenizer } from "../tokenizer/llama2c_tokenizer.ts";
import { fimPrompt, fimTokens } from "./fill_in_middle.ts";

async function smolLM2(fim: boolean): Promise<HfTokenizer> {
  const read = async (file: string) => {
    const text = await Deno.readTextFile(`${SMOLLM2_TOKENIZER}${file}`);
    return JSON.parse(fim ? withFimNames(text) : text);
  };
  return new HfTokenizer(await read("tokenizer.json"), await read("tokenizer_config.json"));
}

Deno.test("fimTokens finds a vocabulary's fill-in-the-middle tokens, and none where it has none", async () => {
  const fim = await smolLM2(true);
  assert.deepEqual(fimTokens(fim), { prefix: 8, suffix: 9, middle: 10 });
  assert.deepEqual([8, 9, 10].map((id) => fim.piece(id)), FIM_RENAMES.map(([, to]) => to));
  assert.equal(fimTokens(await smolLM2(false)), null);
  const stories = parseLlama2cTokenizer(
    await Deno.readFile(
      new URL("../../../shared/fixtures/stories260K/tok512.bin", import.meta.url),
    ),
  );
  assert.equal(fimTokens(stories), null);
});

Deno.test("fimPrompt puts the prefix, then the suffix, then asks for the middle", async () => {
  const tokenizer = await smolLM2(true);
  const tokens = fimTokens(tokenizer)!;
  const prefix = "def add(a, b):\n    ";
  const suffix = "\n\nprint(add(1, 2))\n";
  const ids = fimPrompt(tokenizer, tokens, prefix, suffix);
  assert.deepEqual(ids, [
    8,
    ...tokenizer.encode(prefix, { addBos: false }),
    9,
    ...tokenizer.encode(suffix, { addBos: false }),
    10,
  ]);
  // A prefix given as ids is read as it is; BOS, when a tokenizer starts texts with it, first.
  assert.deepEqual(fimPrompt(tokenizer, tokens, [5, 6], ""), [8, 5, 6, 9, 10]);
  const stories = parseLlama2cTokenizer(
    await Deno.readFile(
      new URL("../../../shared/fixtures/stories260K/tok512.bin", import.meta.url),
    ),
  );
  const made = fimPrompt(stories, { prefix: 3, suffix: 4, middle: 5 }, "Once", "end");
  assert.deepEqual(made, [
    stories.bos!,
    3,
    ...stories.encode("Once").slice(1),
    4,
    ...stories.encode("end", { addBos: false }),
    5,
  ]);
});
