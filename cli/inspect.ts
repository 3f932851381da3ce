/** `deno task inspect <archive-or-folder> [--json]`: prints what an NNEF model is. */
import { parseCliArgs } from "./args.ts";
import { type Archive, openArchive } from "../src/nnef/archive.ts";
import { formatModelSummary, inspectModel, type ModelSummary } from "../src/nnef/inspect.ts";
import { loadModel } from "../src/graph/load_model.ts";
import { type Dim, dimToString } from "../src/tensor/dim.ts";
import { resolveModel } from "../models/resolve.ts";
import { ProgressReporter } from "./progress.ts";
import { validateGraph } from "../src/graph/validate.ts";
import { parseDocument } from "../src/nnef/parse.ts";

const USAGE = "Usage: rill inspect <model> [--json] [--no-shapes] [--cache-dir DIR]\n" +
  "<model> is an NNEF archive (.nnef.tar, .nnef.tgz, a folder, an http(s):// or s3:// URL), a\n" +
  "GGUF file, a Hugging Face folder or hf:org/name; a GGUF file or Hugging Face folder is\n" +
  "converted once into the cache (--cache-dir, default $RILL_CACHE_DIR or ~/.cache/rill).\n" +
  "Output shapes are inferred by loading the graph (weights included); --no-shapes skips that\n" +
  "(the graph's names, operators and arguments are checked either way).";

export async function inspectCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCliArgs(args, { booleans: ["json", "help", "no-shapes"], values: ["cache-dir"] });
  } catch (e) {
    console.error(`rill inspect: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { positional, flags } = parsed;
  if (flags.has("help")) {
    console.log(USAGE);
    return 0;
  }
  if (positional.length !== 1) {
    console.error(
      positional.length === 0
        ? `rill inspect: the model is missing: give an archive, a GGUF file or a folder\n${USAGE}`
        : USAGE,
    );
    return 2;
  }
  const cacheDir = flags.get("cache-dir");
  try {
    const reporter = new ProgressReporter();
    const resolved = await resolveModel(positional[0]!, {
      ...(typeof cacheDir === "string" ? { cacheDir } : {}),
      onProgress: (progress) => reporter.update(progress),
    });
    const archive = await openArchive(resolved.location);
    try {
      let summary = await inspectModel(archive);
      if (!flags.has("no-shapes")) summary = await withInferredOutputs(summary, archive);
      else await validateArchiveGraph(archive);
      console.log(flags.has("json") ? JSON.stringify(summary) : formatModelSummary(summary));
    } finally {
      await archive.close();
    }
  } catch (e) {
    console.error(`rill inspect: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  return 0;
}

/**
 * Fills the outputs' item types and symbolic shapes from the graph runtime's shape inference
 * (the graph text declares only the inputs).
 */
async function withInferredOutputs(
  summary: ModelSummary,
  archive: Archive,
): Promise<ModelSummary> {
  const model = await loadModel(archive);
  const facts = new Map(model.outputs.map((io) => [io.name, io.fact]));
  const outputs = summary.outputs.map((io) => {
    const fact = facts.get(io.name);
    return fact ? { ...io, dtype: fact.dtype, shape: fact.shape.map(dimShapeItem) } : io;
  });
  return { ...summary, outputs };
}

/** Checks the names, operators and arguments of the graph without loading its weights. */
async function validateArchiveGraph(archive: Archive): Promise<void> {
  const file = `${archive.name}/graph.nnef`;
  const text = new TextDecoder().decode(await archive.read("graph.nnef"));
  validateGraph(parseDocument(text, file), file);
}

function dimShapeItem(d: Dim): number | string {
  return typeof d === "number" ? d : dimToString(d);
}
