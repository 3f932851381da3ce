import assert from "node:assert/strict";
import { FIM_RENAMES, SMOLLM2_TOKENIZER, withFimNames } from "../../tests/_hub.ts";
import { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import { parseLlama2cTokenizer } from "../tokenizer/llama2c_tokenizer.ts";
import { fimPrompt, fimTokens, infillPrompt } from "./fill_in_middle.ts";

/** Three of stories260K's tokens standing for the markers. */
const MARKERS = { prefix: 3, suffix: 4, middle: 5 };

async function smolLM2(fim: boolean): Promise<HfTokenizer> {
  const read = async (file: string) => {
    const text = await Deno.readTextFile(`${SMOLLM2_TOKENIZER}${file}`);
    return JSON.parse(fim ? withFimNames(text) : text);
  };
  return new HfTokenizer(await read("tokenizer.json"), await read("tokenizer_config.json"));
}

Deno.test("fimTokens finds a vocabulary's fill-in-the-middle tokens, and none where it has none", async () => {
  const fim = await smolLM2(true);
  // SmolLM2's vocabulary has StarCoder's repository and file tokens too.
  assert.deepEqual(fimTokens(fim), { prefix: 8, suffix: 9, middle: 10, repository: 3, file: 5 });
  assert.deepEqual([3, 5].map((id) => fim.piece(id)), ["<repo_name>", "<file_sep>"]);
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
  const made = fimPrompt(stories, { ...MARKERS, repository: null, file: null }, "Once", "end");
  assert.deepEqual(made, [
    stories.bos!,
    3,
    ...stories.encode("Once").slice(1),
    4,
    ...stories.encode("end", { addBos: false }),
    5,
  ]);
});

Deno.test("infillPrompt writes the project's files as a repository, then the prefix with the prompt, the suffix and the middle marker", async () => {
  const tokenizer = await smolLM2(true);
  const tokens = fimTokens(tokenizer)!;
  const encode = (text: string) => tokenizer.encode(text, { addBos: false });
  const prefix = encode("# a helper\n".repeat(8) + "def add(a, b):\n");
  const prompt = encode("    return");
  const suffix = encode("\n\nprint(add(1, 2))\n");
  const files = [{ filename: "util.py", text: "X = 1\n" }, { filename: "b.py", text: "Y = 2\n" }];
  const project = [
    3,
    ...encode("myproject\n"),
    5,
    ...encode("util.py\n"),
    ...encode("X = 1\n"),
    5,
    ...encode("b.py\n"),
    ...encode("Y = 2\n"),
    5,
    ...encode("filename\n"),
  ];
  const wide = { prefix, suffix, prompt, files, window: 2048, room: 4096 };
  assert.deepEqual(infillPrompt(tokenizer, tokens, wide), [
    ...project,
    8,
    ...prefix,
    ...prompt,
    9,
    ...suffix,
    10,
  ]);
  // A narrow window keeps the prefix's end (three quarters) and the suffix's start (what is
  // left of a quarter after the prompt and two markers); the files keep their end.
  const narrow = infillPrompt(tokenizer, tokens, {
    ...wide,
    window: 4 * (prompt.length + 4),
    room: 5,
  });
  assert.deepEqual(narrow, [
    ...project.slice(-5),
    8,
    ...prefix.slice(-3 * (prompt.length + 4)),
    ...prompt,
    9,
    ...suffix.slice(0, 2),
    10,
  ]);
  assert.ok(prefix.length > 3 * (prompt.length + 4) && suffix.length > 2);
  // llama.cpp's --spm-infill: the same parts, the suffix first.
  assert.deepEqual(infillPrompt(tokenizer, tokens, { ...wide, suffixFirst: true }), [
    ...project,
    9,
    ...suffix,
    8,
    ...prefix,
    ...prompt,
    10,
  ]);
});

Deno.test("infillPrompt without repository tokens sets each file apart with a snippet line, after BOS", async () => {
  const stories = parseLlama2cTokenizer(
    await Deno.readFile(
      new URL("../../../shared/fixtures/stories260K/tok512.bin", import.meta.url),
    ),
  );
  const encode = (text: string) => stories.encode(text, { addBos: false });
  const made = infillPrompt(stories, { ...MARKERS, repository: null, file: null }, {
    prefix: encode("Once"),
    suffix: encode("end"),
    prompt: [],
    files: [{ filename: "tale.txt", text: "A cat." }],
    window: 64,
    room: 64,
  });
  assert.deepEqual(made, [
    stories.bos!,
    ...encode("\n\n--- snippet ---\n\n"),
    ...encode("A cat."),
    3,
    ...encode("Once"),
    4,
    ...encode("end"),
    5,
  ]);
});
