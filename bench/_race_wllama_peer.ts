/**
 * bench:race's wllama peer, run by Deno (with `--location`, which wllama resolves its wasm
 * against): `@wllama/wllama` (llama.cpp compiled to WebAssembly) on one GGUF at a fixed thread
 * count. Requests arrive as JSON lines on stdin; each answer is one line on stdout starting
 * with "@race ".
 *
 * wllama targets browsers; three things make it run in Deno, all set up before it loads:
 * - its workers' code is given as `text/javascript` Blobs, and Emscripten's glue in them takes
 *   Deno's `process` global for Node's (then `require`s `worker_threads`): every such Blob gets
 *   a prefix that deletes `process` and makes the pthread workers it starts module workers
 *   (Deno has no classic workers);
 * - its cache manager needs a browser storage: it gets one that stores nothing (the model is
 *   handed over as a Blob);
 * - the wasm is passed as a `blob:` URL: Emscripten reads `file:` URLs with XMLHttpRequest.
 *
 * Usage: deno run -A --location http://localhost/ _race_wllama_peer.ts <node_modules> <model.gguf> <threads>
 */
import process from "node:process";
import { createInterface } from "node:readline";

/** The part of wllama's API the peer uses. */
interface Wllama {
  loadModel(blobs: Blob[], params: Record<string, unknown>): Promise<void>;
  isMultithread(): boolean;
  getNumThreads(): number;
  getLoadedContextInfo(): { n_batch: number; n_ubatch: number; n_ctx: number };
  createCompletion(options: Record<string, unknown>): Promise<unknown>;
  exit(): Promise<void>;
}

interface WllamaModule {
  Wllama: {
    new (paths: { default: string }, config: Record<string, unknown>): Wllama;
    getLibllamaVersion(): string;
  };
  CacheManager: new (backends: unknown[]) => unknown;
}

interface CompletionChunk {
  readonly choices: readonly { readonly text: string; readonly finish_reason: string | null }[];
  readonly usage?: { readonly prompt_tokens: number; readonly completion_tokens: number };
}

const WORKER_PREFIX = `delete globalThis.process;
{
  const ModuleWorker = globalThis.Worker;
  globalThis.Worker = class extends ModuleWorker {
    constructor(url, options) {
      const { workerData: _, ...rest } = options ?? {};
      super(url, { ...rest, type: "module" });
    }
  };
}
`;

function patchWorkerBlobs(): void {
  const NativeBlob = globalThis.Blob;
  globalThis.Blob = class extends NativeBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      const script = options?.type === "text/javascript";
      super(script ? [WORKER_PREFIX, ...(parts ?? [])] : parts, options);
    }
  };
}

/** A storage that holds nothing: wllama reads the model from the Blob it is given. */
const NO_STORAGE = {
  isSupported: () => true,
  read: () => Promise.resolve(null),
  write: () => Promise.resolve(),
  getSize: () => Promise.resolve(-1),
  list: () => Promise.resolve([]),
  delete: () => Promise.resolve(),
};

const LOG = {
  debug: () => {},
  log: (...args: unknown[]) => console.error(...args),
  warn: (...args: unknown[]) => console.error(...args),
  error: (...args: unknown[]) => console.error(...args),
};

async function open(
  module: WllamaModule,
  root: string,
  model: string,
  threads: number,
): Promise<Wllama> {
  const wasm = new Blob([await Deno.readFile(`${root}/wasm/wllama.wasm`)], {
    type: "application/wasm",
  });
  const instance = new module.Wllama({ default: URL.createObjectURL(wasm) }, {
    suppressNativeLog: true,
    logger: LOG,
    cacheManager: new module.CacheManager([NO_STORAGE]),
  });
  await instance.loadModel([new Blob([await Deno.readFile(model)])], {
    n_ctx: 512,
    n_threads: threads,
    n_gpu_layers: 0,
  });
  return instance;
}

/**
 * Greedy generation from a text prompt (wllama takes no token ids): prefill, then `decode`
 * steps, timed from the request to the first streamed token and from it to the last one.
 */
async function run(wllama: Wllama, prompt: string, decode: number) {
  let text = "";
  let chunks = 0;
  let usage: CompletionChunk["usage"];
  const t0 = performance.now();
  let t1 = t0;
  await wllama.createCompletion({
    prompt,
    max_tokens: decode + 1,
    temperature: 0,
    ignore_eos: true,
    cache_prompt: false,
    stream: true,
    onData: (chunk: CompletionChunk) => {
      const piece = chunk.choices[0]?.text ?? "";
      if (piece !== "" && chunks++ === 0) t1 = performance.now();
      text += piece;
      usage = chunk.usage ?? usage;
    },
  });
  const t2 = performance.now();
  return {
    prefillMs: t1 - t0,
    decodeMs: t2 - t1,
    text,
    chunks,
    promptTokens: usage?.prompt_tokens,
    completionTokens: usage?.completion_tokens,
  };
}

/**
 * The `top` most likely next tokens after `prompt` and their logits relative to the first
 * (wllama's log-probabilities, which differ as the logits do).
 */
async function probe(wllama: Wllama, prompt: string, top: number) {
  const out = await wllama.createCompletion({
    prompt,
    max_tokens: 1,
    temperature: 0,
    cache_prompt: false,
    logprobs: top,
  }) as {
    choices: { logprobs: { content: { top_logprobs: { id: number; logprob: number }[] }[] } }[];
  };
  const best = out.choices[0]!.logprobs.content[0]!.top_logprobs;
  return { ids: best.map((t) => t.id), logits: best.map((t) => t.logprob - best[0]!.logprob) };
}

function answer(message: unknown): void {
  console.log(`@race ${JSON.stringify(message)}`);
}

async function main(): Promise<void> {
  const [modules, model, threadArg] = Deno.args;
  if (modules === undefined || model === undefined || threadArg === undefined) {
    throw new TypeError("Usage: _race_wllama_peer.ts <node_modules> <model.gguf> <threads>");
  }
  patchWorkerBlobs();
  const root = `${modules}/@wllama/wllama/esm`;
  const module: WllamaModule = await import(`file://${root}/index.js`);
  const wllama = await open(module, root, model, Number(threadArg));
  answer({ id: 0, result: "ready" });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === "") continue;
    const { id, op, ...args } = JSON.parse(line);
    try {
      if (op === "info") {
        const info = wllama.getLoadedContextInfo();
        answer({
          id,
          result: {
            llamaCpp: module.Wllama.getLibllamaVersion(),
            multithread: wllama.isMultithread(),
            threads: wllama.getNumThreads(),
            batch: info.n_batch,
            ubatch: info.n_ubatch,
            context: info.n_ctx,
          },
        });
      } else if (op === "probe") {
        answer({ id, result: await probe(wllama, args.prompt, args.top) });
      } else if (op === "run") {
        answer({ id, result: await run(wllama, args.prompt, args.decode) });
      } else {
        throw new TypeError(`Unknown request '${op}'`);
      }
    } catch (e) {
      answer({ id, error: e instanceof Error ? e.message : String(e) });
    }
  }
  await wllama.exit();
}

await main();
