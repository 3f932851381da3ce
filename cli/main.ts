/** Rill's command line: `deno run -A cli/main.ts <command> [args]`. */
import { parseCliArgs } from "./args.ts";
import { denoVersionProblem, MIN_DENO } from "./deno_version.ts";
import { catchStrayErrors, errorMessage } from "./top_level.ts";

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import("./serve.ts")).serveCommand,
  batch: async () => (await import("./batch.ts")).batchCommand,
  generate: async () => (await import("./generate.ts")).generateCommand,
  inspect: async () => (await import("./inspect.ts")).inspectCommand,
  tokenize: async () => (await import("./tokenize.ts")).tokenizeCommand,
  convert: async () => (await import("./convert.ts")).convertCommand,
};

/**
 * Runs one command and returns its exit code: 0 done, 1 failed (one line on stderr says why),
 * 2 a usage error. Nothing it throws escapes.
 */
export async function main(argv: string[]): Promise<number> {
  const problem = denoVersionProblem(Deno.version.deno, MIN_DENO, "run");
  if (problem !== null) {
    console.error(problem);
    return 1;
  }
  const [name, ...rest] = argv;
  const load = name === undefined ? undefined : COMMANDS[name];
  if (load === undefined) {
    console.error(
      `Usage: rill <command> [args]\nCommands: ${Object.keys(COMMANDS).sort().join(", ")}`,
    );
    return 2;
  }
  try {
    const command = await load();
    return await command(rest);
  } catch (e) {
    console.error(`rill ${name}: ${errorMessage(e)}`);
    return 1;
  }
}

export { parseCliArgs };

if (import.meta.main) {
  const name = Deno.args[0] ?? "";
  catchStrayErrors(`rill ${name}`.trimEnd(), { keepRunning: name === "serve" });
  Deno.exit(await main(Deno.args));
}
