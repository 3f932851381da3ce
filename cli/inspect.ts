/** `deno task inspect <archive-or-folder> [--json]`: prints what an NNEF model is. */
import { parseCliArgs } from "./args.ts";
import { openArchive } from "../src/nnef/archive.ts";
import { formatModelSummary, inspectModel } from "../src/nnef/inspect.ts";

const USAGE = "Usage: rill inspect <model.nnef.tgz | model.tar | folder | https://…> [--json]";

export async function inspectCommand(args: string[]): Promise<number> {
  const { positional, flags } = parseCliArgs(args, ["json", "help"]);
  if (flags.has("help")) {
    console.log(USAGE);
    return 0;
  }
  const unknown = [...flags.keys()].filter((name) => name !== "json");
  if (positional.length !== 1 || unknown.length > 0) {
    console.error(unknown.length > 0 ? `Unknown option '--${unknown[0]}'\n${USAGE}` : USAGE);
    return 2;
  }
  try {
    const archive = await openArchive(positional[0]!);
    try {
      const summary = await inspectModel(archive);
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
