/** `deno task tokenize`: prints the token ids of stdin, or of every case of a llama.cpp `.inp` file. */
import { loadTokenizer } from "../src/tokenizer/load_tokenizer.ts";
import { formatVocabIds, splitVocabInputs } from "../src/tokenizer/vocab_cases.ts";
import { parseCliArgs } from "./args.ts";

const USAGE = `Usage: rill tokenize --tokenizer <tokenizer.json|folder|tokenizer.bin|model.gguf>
                     [--cases F.inp] [--no-bos] [--bos]
Without --cases: prints the ids of the whole of stdin (taken byte for byte), space-separated,
with BOS when the tokenizer adds one by default (--no-bos: never).
With --cases: prints one line per case in the format of llama.cpp's .out files, without BOS
(as llama.cpp's test does; --bos: with).`;

function usageError(message: string): number {
  console.error(`rill tokenize: ${message}\n\n${USAGE}`);
  return 2;
}

async function readStdin(): Promise<string> {
  return await new Response(Deno.stdin.readable).text();
}

export async function tokenizeCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCliArgs(args, {
      booleans: ["no-bos", "bos", "help"],
      values: ["tokenizer", "cases"],
    });
  } catch (e) {
    console.error(`rill tokenize: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { flags, positional } = parsed;
  const path = flags.get("tokenizer");
  const cases = flags.get("cases");
  if (flags.has("help")) {
    console.error(USAGE);
    return 0;
  }
  if (typeof path !== "string") {
    return usageError(
      "--tokenizer is missing: give a tokenizer.json, a folder holding one, a llama2.c " +
        "tokenizer.bin or a GGUF file",
    );
  }
  if (cases === true) return usageError("--cases needs a file: a llama.cpp .inp file of texts");
  if (positional.length > 0) {
    console.error(USAGE);
    return 2;
  }
  let tokenizer;
  try {
    tokenizer = await loadTokenizer(path);
  } catch (e) {
    console.error(`rill tokenize: ${(e as Error).message}`);
    return 1;
  }
  const out = new TextEncoder();
  if (cases === undefined) {
    const options = flags.has("no-bos") ? { addBos: false } : {};
    const ids = tokenizer.encode(await readStdin(), options);
    await Deno.stdout.write(out.encode(ids.join(" ") + "\n"));
    return 0;
  }
  let raw: string;
  try {
    raw = await Deno.readTextFile(cases);
  } catch (e) {
    console.error(`rill tokenize: cannot read ${cases}: ${(e as Error).message}`);
    return 1;
  }
  const addBos = flags.has("bos");
  const lines = splitVocabInputs(raw).map((text) =>
    formatVocabIds(tokenizer.encode(text, { addBos }))
  );
  await Deno.stdout.write(out.encode(lines.map((l) => l + "\n").join("")));
  return 0;
}
