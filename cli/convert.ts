/** `rill convert`: llama2.c, Hugging Face safetensors or GGUF -> Rill `.nnef.tar`. */
import { parseCliArgs } from "./args.ts";
import { errorMessage } from "./top_level.ts";
import { convertModel } from "../models/convert.ts";
import { ProgressReporter } from "./progress.ts";

const USAGE = `Usage: rill convert <input> [--output out.nnef.tar] [options]

  <input>                 HF model folder, model.gguf, or llama2.c checkpoint.bin
  --output, -o FILE       archive to write (default: <input name>.nnef.tar)
  --tokenizer FILE        llama2.c tokenizer.bin (required for a llama2.c checkpoint)
  --q40                   store linear weights and the token embedding (rows a multiple of
                          32 long) as Q4_0
  --float-embedding       with --q40, keep the token embedding in --dtype (as
                          torch_to_nnef's Q4_0 exports do)
  --dtype f32|f16         storage of the other matrices (default: as the input)
  --quiet                 no progress on stderr`;

function defaultOutput(input: string): string {
  const base = input.replace(/\/+$/, "").replace(/\.(bin|gguf)$/, "");
  return `${base}.nnef.tar`;
}

/** Runs `rill convert`; returns the process exit code. */
export async function convertCommand(args: string[]): Promise<number> {
  const normalized = args.map((a) => (a === "-o" ? "--output" : a));
  let parsed;
  try {
    parsed = parseCliArgs(normalized, {
      booleans: ["q40", "float-embedding", "quiet", "help"],
      values: ["output", "tokenizer", "dtype"],
    });
  } catch (e) {
    console.error(`rill convert: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { positional, flags } = parsed;
  if (flags.has("help")) {
    console.error(USAGE);
    return 0;
  }
  if (positional.length === 0) {
    console.error(
      "rill convert: the input is missing: give a Hugging Face folder, a GGUF file or a " +
        `llama2.c checkpoint (with --tokenizer tokenizer.bin)\n\n${USAGE}`,
    );
    return 2;
  }
  if (positional.length > 2) {
    console.error(USAGE);
    return 2;
  }
  const input = positional[0]!;
  const outputFlag = flags.get("output");
  const output = typeof outputFlag === "string"
    ? outputFlag
    : positional[1] ?? defaultOutput(input);
  const dtype = flags.get("dtype");
  if (dtype !== undefined && dtype !== "f32" && dtype !== "f16") {
    console.error(`--dtype must be f32 or f16, not '${String(dtype)}'`);
    return 2;
  }
  const tokenizer = flags.get("tokenizer");
  const reporter = new ProgressReporter();
  try {
    const result = await convertModel(input, output, {
      ...(typeof tokenizer === "string" ? { tokenizer } : {}),
      ...(dtype !== undefined ? { dtype } : {}),
      q40: flags.has("q40"),
      floatEmbedding: flags.has("float-embedding"),
      ...(flags.has("quiet") ? {} : {
        onProgress: (p) =>
          reporter.update({ phase: "convert", doneBytes: p.bytesDone, totalBytes: p.bytesTotal }),
      }),
    });
    if (!flags.has("quiet")) {
      const size = (await Deno.stat(result.output)).size;
      reporter.update({ phase: "convert", doneBytes: size, totalBytes: size });
      console.error(`Wrote ${result.output} (${result.index.members.length} members)`);
    }
    return 0;
  } catch (e) {
    console.error(`rill convert: ${errorMessage(e)}`);
    return 1;
  }
}
