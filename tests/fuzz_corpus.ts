/**
 * The larger fuzz corpus, run by hand (`deno run -A tests/fuzz_corpus.ts [--per-kind N]
 * [--seed S] [--serve N]`): mutants of the stories260K export (`tests/_mutations.ts`) through
 * `rill inspect`, `rill generate` and `rill serve`, and broken converter inputs through
 * `rill convert`, each as a child process. It counts crashes (an exit code other than 0, 1 and
 * 2, or an uncaught error or stack on stderr), hangs (no end within the limit), runs over 1 GB,
 * files written outside their place, and detectable mutants that were served or generated with
 * the original's output changed (silent wrong outputs) against those refused.
 */
import { join } from "node:path";
import { runRill } from "./_cli_run.ts";
import {
  ARCHIVE_KINDS,
  archiveBase,
  archiveMutant,
  CONVERTER_KINDS,
  converterMutant,
  type Mutant,
  writeSmallHf,
} from "./_mutations.ts";
import { fixture } from "./_stories260k.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** Deno's own cache stays where it is when HOME points into the sandbox. */
const DENO_DIR = Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? ".", ".cache", "deno");
const LIMIT_MS = 120_000;
const GB = 1 << 30;

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

const PER_KIND = flag("per-kind", 12);
const SEED = flag("seed", 77);
const SERVE_CASES = flag("serve", 36);

interface Tally {
  runs: number;
  /** Runs by command and exit code, e.g. `generate 1`. */
  exits: Map<string, number>;
  peakRss: number;
  crashes: string[];
  hangs: string[];
  overMemory: string[];
  strayFiles: string[];
  /** Detectable mutants refused (or run with the original's output). */
  caught: number;
  /** Detectable mutants that ran with another output. */
  silent: string[];
  /** Undetectable mutants that ran with another output (nothing could tell). */
  undetectable: number;
}

const tally: Tally = {
  runs: 0,
  exits: new Map(),
  peakRss: 0,
  crashes: [],
  hangs: [],
  overMemory: [],
  strayFiles: [],
  caught: 0,
  silent: [],
  undetectable: 0,
};

/** Every file under `dir` with its size and mtime, to see what a run wrote. */
async function snapshot(dir: string, prefix = ""): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of Deno.readDir(join(dir, prefix))) {
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory) {
      for (const [k, v] of await snapshot(dir, rel)) out.set(k, v);
    } else {
      const info = await Deno.lstat(join(dir, rel));
      out.set(rel, `${info.size}:${info.mtime?.getTime()}`);
    }
  }
  return out;
}

function changed(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after].filter(([k, v]) => before.get(k) !== v).map(([k]) => k);
}

async function repoStatus(): Promise<string> {
  const out = await new Deno.Command("git", { args: ["status", "--porcelain"], cwd: ROOT })
    .output();
  return new TextDecoder().decode(out.stdout);
}

/** Records a run's crash, hang or memory; true when it ended normally. */
function judge(context: string, code: number | null, stderr: string, peakRss: number): boolean {
  tally.runs++;
  const exit = `${context.split(" ")[0]} ${code ?? "killed"}`;
  tally.exits.set(exit, (tally.exits.get(exit) ?? 0) + 1);
  tally.peakRss = Math.max(tally.peakRss, peakRss);
  if (peakRss > GB) tally.overMemory.push(`${context}: ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
  if (code === null) {
    tally.hangs.push(context);
    return false;
  }
  if (![0, 1, 2].includes(code) || /Uncaught|panicked|^\s+at /m.test(stderr)) {
    tally.crashes.push(`${context}: exit ${code}: ${stderr.slice(0, 600)}`);
    return false;
  }
  return true;
}

function outcome(mutant: Mutant, context: string, sameOutput: boolean, refused: boolean): void {
  if (refused || sameOutput) {
    if (mutant.detectable) tally.caught++;
    return;
  }
  if (mutant.detectable) tally.silent.push(context);
  else tally.undetectable++;
}

function generateArgs(model: string): string[] {
  return [
    "generate",
    "--model",
    model,
    "--tokenizer",
    fixture("tok512.bin"),
    "--prompt",
    "Once upon a time",
    "--max-tokens",
    "8",
    "--temperature",
    "0",
  ];
}

/** A `rill serve` child: waits for it to be ready or to fail, asks one completion, stops it. */
async function serveOnce(model: string, sandbox: string): Promise<{
  code: number | null;
  stderr: string;
  text: string | null;
  alive: boolean;
  peakRss: number;
}> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "cli/main.ts",
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--model",
      model,
      "--tokenizer",
      fixture("tok512.bin"),
      "--threads",
      "1",
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1", RILL_CACHE_DIR: join(sandbox, "cache"), HOME: sandbox, DENO_DIR },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const reading = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) stderr += text;
  })();
  let exited: Deno.CommandStatus | null = null;
  child.status.then((s) => (exited = s));
  const deadline = Date.now() + LIMIT_MS;
  let peakRss = 0;
  const sample = async () => {
    try {
      const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
      peakRss = Math.max(peakRss, Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0) * 1024);
    } catch {
      // gone
    }
  };
  while (exited === null && !/rill: ready|cannot load the model/.test(stderr)) {
    if (Date.now() > deadline) break;
    await sample();
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1];
  let text: string | null = null;
  if (exited === null && url !== undefined && /rill: ready/.test(stderr)) {
    try {
      const response = await fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        // No `model`: the one served (its id depends on the file name).
        body: JSON.stringify({
          prompt: "Once upon a time",
          max_tokens: 8,
          temperature: 0,
        }),
        signal: AbortSignal.timeout(LIMIT_MS),
      });
      const body = await response.json();
      text = response.status === 200 ? body.choices[0].text : null;
      // Late failures (a weight checked after ready) reach the log within this pause.
      await new Promise((r) => setTimeout(r, 300));
      const again = await fetch(`${url}/health`);
      await again.body?.cancel();
    } catch {
      text = null;
    }
    await sample();
  }
  const alive = exited === null;
  const hung = alive && !/rill: ready|cannot load the model/.test(stderr);
  if (alive) {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
  }
  const status = await child.status;
  await reading;
  return { code: hung ? null : alive ? 0 : status.code, stderr, text, alive, peakRss };
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rill-fuzz-" });
  const repoBefore = await repoStatus();
  const started = performance.now();
  try {
    const base = await archiveBase(join(dir));
    const original = fixture("nnef/stories260K_f32.nnef.tgz");
    const reference = await runRill(generateArgs(original));
    if (reference.code !== 0) {
      throw new Error(`the original does not generate: ${reference.stderr}`);
    }
    const sandbox = join(dir, "sandbox");
    await Deno.mkdir(sandbox);
    const referenceServe = await serveOnce(original, sandbox);
    if (referenceServe.text === null) {
      throw new Error(`the original does not serve: ${referenceServe.stderr}`);
    }
    let serves = 0;
    let archives = 0;
    for (const kind of ARCHIVE_KINDS) {
      for (let i = 0; i < PER_KIND; i++) {
        const mutant = await archiveMutant(base, kind, SEED * 1000 + i, dir);
        archives++;
        const path = join(sandbox, `${mutant.id.replace("#", "-")}${mutant.file}`);
        await Deno.writeFile(path, mutant.bytes);
        const before = await snapshot(sandbox);
        const id = `${mutant.id} (${mutant.what})`;
        const inspect = await runRill(["inspect", path], { limitMs: LIMIT_MS });
        judge(`inspect ${id}`, inspect.code, inspect.stderr, inspect.peakRss);
        const generate = await runRill(generateArgs(path), {
          limitMs: LIMIT_MS,
          env: { HOME: sandbox, RILL_CACHE_DIR: join(sandbox, "cache"), DENO_DIR },
        });
        if (judge(`generate ${id}`, generate.code, generate.stderr, generate.peakRss)) {
          outcome(
            mutant,
            `generate ${id}`,
            generate.code === 0 && generate.stdout === reference.stdout,
            generate.code !== 0,
          );
        }
        if (serves < SERVE_CASES && i % Math.max(1, Math.floor(PER_KIND / 4)) === 0) {
          serves++;
          const serve = await serveOnce(path, sandbox);
          if (judge(`serve ${id}`, serve.code, serve.stderr, serve.peakRss)) {
            if (!serve.alive && /rill: ready/.test(serve.stderr)) {
              tally.crashes.push(`serve ${id}: died after ready: ${serve.stderr.slice(-600)}`);
            } else {
              outcome(
                mutant,
                `serve ${id}`,
                serve.text === referenceServe.text,
                serve.text === null,
              );
            }
          }
        }
        const stray = changed(before, await snapshot(sandbox)).filter((f) =>
          !f.startsWith("cache/")
        );
        if (stray.length > 0) tally.strayFiles.push(`${id}: ${stray.join(", ")}`);
        await Deno.remove(path);
      }
    }
    const hf = join(dir, "hf-original");
    await writeSmallHf(hf);
    let conversions = 0;
    for (const kind of CONVERTER_KINDS) {
      for (let i = 0; i < PER_KIND; i++) {
        const caseDir = join(dir, "convert");
        await Deno.mkdir(caseDir);
        const mutant = await converterMutant(kind, SEED * 1000 + i, caseDir, hf);
        conversions++;
        const output = join(caseDir, "out", "model.nnef.tar");
        const before = await snapshot(dir);
        const run = await runRill([
          "convert",
          mutant.input,
          "-o",
          output,
          "--quiet",
          ...(mutant.tokenizer === undefined ? [] : ["--tokenizer", mutant.tokenizer]),
        ], { limitMs: LIMIT_MS });
        const id = `convert ${mutant.id} (${mutant.what})`;
        if (judge(id, run.code, run.stderr, run.peakRss)) {
          if (run.code === 0 && mutant.mustFail) tally.silent.push(id);
          else if (mutant.mustFail) tally.caught++;
        }
        const stray = changed(before, await snapshot(dir)).filter((f) =>
          f !== "convert/out/model.nnef.tar"
        );
        if (stray.length > 0) tally.strayFiles.push(`${id}: ${stray.join(", ")}`);
        await Deno.remove(caseDir, { recursive: true });
      }
    }
    if ((await repoStatus()) !== repoBefore) tally.strayFiles.push("the repository's work tree");
    const minutes = ((performance.now() - started) / 60_000).toFixed(1);
    console.log(
      `${archives} archive mutants (inspect, generate; serve for ${serves}) and ${conversions} ` +
        `converter inputs: ${tally.runs} runs in ${minutes} min`,
    );
    console.log(`crashes: ${tally.crashes.length}`);
    console.log(`hangs: ${tally.hangs.length}`);
    console.log(
      `runs over 1 GB: ${tally.overMemory.length} (largest peak RSS ${
        (tally.peakRss / 2 ** 20).toFixed(0)
      } MiB)`,
    );
    console.log(`exit codes: ${JSON.stringify(Object.fromEntries([...tally.exits].sort()))}`);
    console.log(`files written outside their place: ${tally.strayFiles.length}`);
    console.log(
      `detectable changes caught: ${tally.caught}; silent wrong outputs: ${tally.silent.length}; ` +
        `undetectable changes that changed the output: ${tally.undetectable}`,
    );
    for (
      const list of [tally.crashes, tally.hangs, tally.overMemory, tally.strayFiles, tally.silent]
    ) {
      for (const line of list) console.log(`  ${line}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
