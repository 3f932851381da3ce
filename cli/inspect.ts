/** `deno task inspect <archive-or-folder> [--json]`: prints what an NNEF model is. */
import { parseCliArgs } from "./args.ts";
import { type Archive, openArchive } from "../src/nnef/archive.ts";
import { formatModelSummary, inspectModel, type ModelSummary } from "../src/nnef/inspect.ts";
import { loadModel } from "../src/graph/model.ts";
import { type Dim, dimToString } from "../src/graph/dim.ts";

const USAGE =
  "Usage: rill inspect <model.nnef.tgz | model.tar | folder | https://…> [--json] [--no-shapes]\n" +
  "Output shapes are inferred by loading the graph (weights included); --no-shapes skips that.";

export async function inspectCommand(args: string[]): Promise<number> {
  const { positional, flags } = parseCliArgs(args, ["json", "help", "no-shapes"]);
  if (flags.has("help")) {
    console.log(USAGE);
    return 0;
  }
  const unknown = [...flags.keys()].filter((name) => name !== "json" && name !== "no-shapes");
  if (positional.length !== 1 || unknown.length > 0) {
    console.error(unknown.length > 0 ? `Unknown option '--${unknown[0]}'\n${USAGE}` : USAGE);
    return 2;
  }
  try {
    const archive = await openArchive(positional[0]!);
    try {
      let summary = await inspectModel(archive);
      if (!flags.has("no-shapes")) summary = await withInferredOutputs(summary, archive);
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

function dimShapeItem(d: Dim): number | string {
  return typeof d === "number" ? d : dimToString(d);
}
