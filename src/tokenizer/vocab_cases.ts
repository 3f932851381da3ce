/** One llama.cpp tokenizer test vector: a text and, when known, its expected ids. */
export interface VocabCase {
  readonly text: string;
  readonly ids: readonly number[];
}

const SEPARATOR = "\n__ggml_vocab_test__\n";

/** Splits a llama.cpp `.inp` file into its texts (cases end with a `__ggml_vocab_test__` line). */
export function splitVocabInputs(raw: string): string[] {
  const texts: string[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const next = raw.indexOf(SEPARATOR, pos);
    if (next < 0) {
      texts.push(raw.slice(pos));
      break;
    }
    texts.push(raw.slice(pos, next));
    pos = next + SEPARATOR.length;
  }
  return texts;
}

/** Formats ids as one line of a llama.cpp `.out` file (each id preceded by a space). */
export function formatVocabIds(ids: readonly number[]): string {
  return ids.map((id) => ` ${id}`).join("");
}

/**
 * Reads a llama.cpp `.inp`/`.out` pair into cases.
 *
 * @throws {RangeError} when the two files hold different numbers of cases
 * @throws {SyntaxError} when an `.out` line holds something other than ids
 */
export async function readVocabCases(inpPath: string, outPath: string): Promise<VocabCase[]> {
  const texts = splitVocabInputs(await Deno.readTextFile(inpPath));
  const lines = (await Deno.readTextFile(outPath)).split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length !== texts.length) {
    throw new RangeError(
      `${inpPath} has ${texts.length} cases but ${outPath} has ${lines.length} lines`,
    );
  }
  return texts.map((text, i) => {
    const line = lines[i]!.trim();
    const ids = line === "" ? [] : line.split(" ").map((s) => {
      if (!/^\d+$/.test(s)) throw new SyntaxError(`Bad id '${s}' at ${outPath}:${i + 1}`);
      return Number(s);
    });
    return { text, ids };
  });
}
