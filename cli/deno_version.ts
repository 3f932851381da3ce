/**
 * The Deno versions Rill needs: checked when `cli/main.ts` starts, and before `deno task check`
 * and `deno task test` (`deno run --no-lock cli/deno_version.ts dev`). A Deno older than 2.3
 * stops earlier, at `deno.lock`, with its own "Unsupported lockfile version" message.
 */

/** The oldest Deno that runs Rill: the first to read `deno.lock` version 5. */
export const MIN_DENO = "2.3.0";
/**
 * The oldest Deno whose checks pass the code (`deno task check`, `deno task test`): 2.6.7's type
 * checker rejects kernels/pool.ts, and 2.8's formatter writes routes/playground/index.html
 * otherwise than 2.9's.
 */
export const MIN_DENO_DEV = "2.9.0";

function parts(version: string): number[] {
  return version.split(/[.+-]/).slice(0, 3).map((p) => Number.parseInt(p, 10) || 0);
}

/** Whether `version` (`2.6.8`, `2.9.6+abc`) is at least `min`. */
export function atLeast(version: string, min: string): boolean {
  const a = parts(version);
  const b = parts(min);
  for (let i = 0; i < 3; i++) {
    if (a[i]! !== b[i]!) return a[i]! > b[i]!;
  }
  return true;
}

/** What to tell a user of Deno `version` when it is older than `min`, else null. */
export function denoVersionProblem(version: string, min: string, what: string): string | null {
  if (atLeast(version, min)) return null;
  return `Rill needs Deno ${min} or newer to ${what}; this is Deno ${version}. ` +
    `Upgrade with 'deno upgrade' or 'npm install -g deno@2'`;
}

if (import.meta.main) {
  const dev = Deno.args[0] === "dev";
  const problem = denoVersionProblem(
    Deno.version.deno,
    dev ? MIN_DENO_DEV : MIN_DENO,
    dev ? "check and test the code" : "run",
  );
  if (problem !== null) {
    console.error(problem);
    Deno.exit(1);
  }
}
