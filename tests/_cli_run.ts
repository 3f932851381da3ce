/** Runs the CLI as a child process, with its exit code, output, time and peak memory. */

const ROOT = new URL("..", import.meta.url).pathname;

/** How a `rill` child process ended. */
export interface CliRun {
  /** Null when it was killed at the time limit. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** Peak resident memory in bytes (`VmHWM`, sampled while it ran; 0 where /proc is absent). */
  readonly peakRss: number;
}

async function highWater(pid: number): Promise<number> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

/** `deno run -A cli/main.ts <args>`, killed after `limitMs`. */
export async function runRill(
  args: readonly string[],
  options: { readonly env?: Record<string, string>; readonly limitMs?: number } = {},
): Promise<CliRun> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/main.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let peakRss = 0;
  let killed = false;
  let ended = false;
  const sampling = (async () => {
    while (!ended) {
      peakRss = Math.max(peakRss, await highWater(child.pid));
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  })();
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, options.limitMs ?? 60_000);
  const [status, stdout, stderr] = await Promise.all([
    child.status,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  ended = true;
  await sampling;
  clearTimeout(timer);
  return {
    code: killed ? null : status.code,
    stdout,
    stderr,
    ms: performance.now() - started,
    peakRss,
  };
}
