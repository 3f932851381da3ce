/** `deno task generate`: complete a prompt with a model, streaming the text to stdout. */
import { parseCliArgs } from "./args.ts";
import type { Model } from "../src/graph/model.ts";
import { createSession, type Session } from "../src/engine/session.ts";
import { closeSharedKernels, sharedKernels } from "../src/engine/shared_kernels.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { type LoadedService, loadService } from "../src/engine/load_service.ts";
import { generate } from "../src/engine/generate.ts";
import { IncrementalDetokenizer } from "../src/engine/detokenizer.ts";
import { resolveModel } from "../models/resolve.ts";
import { ProgressReporter } from "./progress.ts";

const USAGE = `Usage: rill generate --model <model> --prompt <text> [--tokenizer <file>]
                     [--max-tokens N] [--temperature T] [--seed N] [--no-stop] [--no-kernels]

  --model        an NNEF archive (.nnef.tar, .nnef.tgz, a folder, an http(s):// or s3:// URL),
                 a GGUF file, a Hugging Face folder or hf:org/name (default: $MODEL); a GGUF
                 file or Hugging Face folder is converted once into the cache
  --tokenizer    for an archive without its own tokenizer.json: a tokenizer.json, a llama2.c
                 tokenizer.bin / tok512.bin or a GGUF file
  --cache-dir    where conversions and hub downloads are kept (default: $RILL_CACHE_DIR or
                 ~/.cache/rill)
  --prompt       the text to complete
  --max-tokens   most tokens to generate (default 256)
  --temperature  0 is greedy (default 1)
  --seed         seed of the sampler (default: random)
  --no-stop      keep going after an end-of-sequence token
  --no-kernels   run in TypeScript only (default: the WASM SIMD kernels when available)

Prints only the completion on stdout; progress, prefill and decode speeds go to stderr.`;

const GENERATE_FLAGS = {
  booleans: ["no-stop", "no-kernels", "help"],
  values: ["model", "tokenizer", "cache-dir", "prompt", "max-tokens", "temperature", "seed"],
};

function numberFlag(value: string | true | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value === true || !Number.isFinite(n)) throw new RangeError(`--${name} needs a number`);
  return n;
}

/** Runs `rill generate`; returns the exit code. */
export async function generateCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCliArgs(args, GENERATE_FLAGS);
    if (parsed.positional.length > 0) {
      throw new TypeError(`Unexpected argument '${parsed.positional[0]}'`);
    }
  } catch (e) {
    return usageError((e as Error).message);
  }
  const { flags } = parsed;
  if (flags.has("help")) {
    console.error(USAGE);
    return 0;
  }
  const model = stringFlag(flags.get("model")) ?? (Deno.env.get("MODEL") || undefined);
  const tokenizerPath = stringFlag(flags.get("tokenizer"));
  const cacheDir = stringFlag(flags.get("cache-dir"));
  const prompt = stringFlag(flags.get("prompt"));
  if (model === undefined) {
    return usageError(
      "--model is missing: give an NNEF archive, a GGUF file, a Hugging Face folder or " +
        "hf:org/name (or set MODEL)",
    );
  }
  if (prompt === undefined) {
    return usageError(
      `--prompt is missing: give the text to complete, e.g. --prompt "Once upon a time"`,
    );
  }
  let maxTokens: number;
  let temperature: number;
  let seed: number | undefined;
  try {
    maxTokens = numberFlag(flags.get("max-tokens"), "max-tokens", 256);
    temperature = numberFlag(flags.get("temperature"), "temperature", 1);
    seed = flags.has("seed") ? numberFlag(flags.get("seed"), "seed", 0) : undefined;
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  try {
    return await run(
      { model, tokenizer: tokenizerPath, cacheDir },
      prompt,
      maxTokens,
      temperature,
      seed,
      !flags.has("no-stop"),
      !flags.has("no-kernels"),
    );
  } catch (e) {
    console.error(`rill generate: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

function usageError(message: string): number {
  console.error(`rill generate: ${message}\n\n${USAGE}`);
  return 2;
}

function stringFlag(value: string | true | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** What to load: the model as given, a tokenizer for an archive without one, the cache. */
interface ModelChoice {
  readonly model: string;
  readonly tokenizer: string | undefined;
  readonly cacheDir: string | undefined;
}

async function run(
  choice: ModelChoice,
  prompt: string,
  maxTokens: number,
  temperature: number,
  seed: number | undefined,
  stopAtEos: boolean,
  useKernels: boolean,
): Promise<number> {
  const reporter = new ProgressReporter();
  const resolved = await resolveModel(choice.model, {
    ...(choice.cacheDir === undefined ? {} : { cacheDir: choice.cacheDir }),
    onProgress: (progress) => reporter.update(progress),
  });
  // With the kernels, weights go straight into their memory and the first pass starts while
  // the last ones are still arriving.
  const kernels = useKernels ? await sharedKernels() : null;
  const loadEnded = Promise.withResolvers<void>();
  let loaded: LoadedService | undefined;
  try {
    loaded = await loadService(resolved.location, {
      modelId: resolved.id,
      ...(kernels ? { kernels } : {}),
      ...(choice.tokenizer === undefined ? {} : { tokenizer: choice.tokenizer }),
      onLoading: (read) => reporter.follow(read, loadEnded.promise),
    });
    const graph = loaded.model;
    const session = await createSession(graph, kernels ? { kernels } : { kernels: false });
    const code = await complete(
      graph,
      loaded.service.tokenizer,
      session,
      prompt,
      maxTokens,
      temperature,
      seed,
      stopAtEos,
      () => reporter.stop(),
    );
    // A weight that failed after the text began (a .tgz whose CRC fails at its end) makes the
    // text unreliable: the command fails rather than exiting 0.
    await graph.weightsReady;
    return code;
  } finally {
    // Loads still in flight (a short completion) end before the kernels close.
    await loaded?.weightsReady.catch(() => {});
    loadEnded.resolve();
    reporter.stop();
    await closeSharedKernels();
  }
}

async function complete(
  graph: Model,
  tokenizer: Tokenizer,
  session: Session,
  prompt: string,
  maxTokens: number,
  temperature: number,
  seed: number | undefined,
  stopAtEos: boolean,
  beforeOutput: () => void,
): Promise<number> {
  const promptIds = tokenizer.encode(prompt);
  const detok = new IncrementalDetokenizer(tokenizer, promptIds);
  const out = Deno.stdout;
  const encoder = new TextEncoder();
  const start = performance.now();
  let prefillEnd = start;
  let count = 0;
  for await (
    const id of generate(graph, tokenizer, promptIds, {
      maxTokens,
      sampling: seed === undefined ? { temperature } : { temperature, seed },
      stopAtEos,
      session,
      onPrefill: () => (prefillEnd = performance.now()),
    })
  ) {
    if (count++ === 0) beforeOutput();
    const text = detok.push(id);
    if (text) await out.write(encoder.encode(text));
  }
  const rest = detok.flush();
  await out.write(encoder.encode(rest + "\n"));
  const end = performance.now();
  const prefillS = (prefillEnd - start) / 1000;
  const decodeS = (end - prefillEnd) / 1000;
  const decoded = Math.max(0, count - 1);
  console.error(
    `prefill: ${promptIds.length} tokens in ${prefillS.toFixed(3)}s (${
      (promptIds.length / prefillS).toFixed(1)
    } tokens/s); decode: ${decoded} tokens in ${decodeS.toFixed(3)}s (${
      decoded > 0 ? (decoded / decodeS).toFixed(1) : "0"
    } tokens/s)`,
  );
  return 0;
}
