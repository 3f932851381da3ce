/** `deno task generate`: complete a prompt with a model, streaming the text to stdout. */
import { parseCliArgs } from "./args.ts";
import { loadModel, type Model } from "../src/graph/model.ts";
import { createSession, type Session } from "../src/engine/session.ts";
import { closeSharedKernels, sharedKernels } from "../src/engine/shared_kernels.ts";
import type { Tokenizer } from "../src/engine/tokenizer.ts";
import { loadTokenizer } from "../src/engine/load_tokenizer.ts";
import { generate } from "../src/engine/generate.ts";
import { IncrementalDetokenizer } from "../src/engine/detokenizer.ts";

const USAGE = `Usage: rill generate --model <archive> --tokenizer <file> --prompt <text>
                     [--max-tokens N] [--temperature T] [--seed N] [--no-stop] [--no-kernels]

  --model        .nnef.tgz / .tar / folder (or http(s) URL) of a tract NNEF LLM export
  --tokenizer    tokenizer.json (Hugging Face) or tokenizer.bin / tok512.bin (llama2.c)
  --prompt       the text to complete
  --max-tokens   most tokens to generate (default 256)
  --temperature  0 is greedy (default 1)
  --seed         seed of the sampler (default: random)
  --no-stop      keep going after an end-of-sequence token
  --no-kernels   run in TypeScript only (default: the WASM SIMD kernels when available)

Prints only the completion on stdout; prefill and decode speeds go to stderr.`;

function numberFlag(value: string | true | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value === true || !Number.isFinite(n)) throw new RangeError(`--${name} needs a number`);
  return n;
}

/** Runs `rill generate`; returns the exit code. */
export async function generateCommand(args: string[]): Promise<number> {
  const { flags } = parseCliArgs(args, ["no-stop", "no-kernels", "help"]);
  const model = flags.get("model");
  const tokenizerPath = flags.get("tokenizer");
  const prompt = flags.get("prompt");
  if (
    flags.has("help") || typeof model !== "string" || typeof tokenizerPath !== "string" ||
    typeof prompt !== "string"
  ) {
    console.error(USAGE);
    return flags.has("help") ? 0 : 2;
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
      model,
      tokenizerPath,
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

async function run(
  model: string,
  tokenizerPath: string,
  prompt: string,
  maxTokens: number,
  temperature: number,
  seed: number | undefined,
  stopAtEos: boolean,
  useKernels: boolean,
): Promise<number> {
  // With the kernels, weights go straight into their memory and the first pass starts while
  // the last ones are still arriving.
  const kernels = useKernels ? await sharedKernels() : null;
  const [graph, tokenizer] = await Promise.all([
    loadModel(model, kernels ? { kernels, lazy: true } : {}),
    loadTokenizer(tokenizerPath),
  ]);
  try {
    const session = await createSession(graph, kernels ? { kernels } : { kernels: false });
    return await complete(
      graph,
      tokenizer,
      session,
      prompt,
      maxTokens,
      temperature,
      seed,
      stopAtEos,
    );
  } finally {
    // Loads still in flight (a short completion) end before the kernels close.
    await graph.weightsReady.catch(() => {});
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
    count++;
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
