/** `deno task serve`: the OpenAI-compatible HTTP service (also behind `deno serve mod.ts`). */
import { parseCliArgs } from "./args.ts";
import { createApp, ServingState } from "../routes/mod.ts";
import { DEFAULT_SERVING_CONFIG, type ServingConfig } from "../routes/state.ts";
import { resolveModel } from "../models/resolve.ts";
import { loadService } from "../src/engine/load_service.ts";
import type { Kernels } from "../kernels/mod.ts";
import { sharedKernels } from "../src/engine/shared_kernels.ts";
import { openDiskCache } from "../src/storage/disk_cache.ts";
import { join } from "node:path";

const USAGE = `Usage: rill serve [options]          (flags win over environment variables)

  --model, MODEL                  local .nnef.tar/.tgz/folder, http(s):// or s3:// URL, or
                                  hf:org/name[@rev] (default hf:HuggingFaceTB/SmolLM2-135M-Instruct)
  --tokenizer, TOKENIZER          tokenizer file or folder when the archive has none
  --model-id, RILL_MODEL_ID       name shown in /v1/models (default: from MODEL)
  --model-aliases, RILL_MODEL_ALIASES  comma-separated other names accepted in 'model' (the
                                  model id always works; other names get 404 model_not_found)
  --host, HOST                    address to listen on (default 0.0.0.0)
  --port, PORT                    port (default 8000; 0 picks a free one)
  --api-keys, RILL_API_KEYS       comma-separated Bearer keys (unset: no authentication)
  --cors-origins, RILL_CORS_ORIGINS  comma-separated allowed origins, or *
  --max-queue, RILL_MAX_QUEUE     requests waiting behind the running one before 429 (default ${DEFAULT_SERVING_CONFIG.maxQueue})
  --max-tokens, RILL_MAX_TOKENS   hard cap on generated tokens per request (default ${DEFAULT_SERVING_CONFIG.maxTokensCap})
  --ping-ms, RILL_PING_MS         silence before a ': ping' stream comment (default ${DEFAULT_SERVING_CONFIG.pingIntervalMs})
  --max-batch, RILL_MAX_BATCH     requests generating at once, batched in each step (default ${DEFAULT_SERVING_CONFIG.maxBatch})
  --kv-budget, RILL_KV_BUDGET     bytes of KV cache for all sequences, e.g. 512MiB (default: room for
                                  max-batch full contexts, at most a quarter of free memory)
  --prefill-chunk, RILL_PREFILL_CHUNK  prompt tokens per prefill step (default: adapted so
                                  that each step takes about 50 ms)
  --threads, RILL_THREADS         threads of the WASM kernels (default: all cores; 0 runs the
                                  graph in TypeScript without the kernels)
  --cache-dir, RILL_CACHE_DIR     hub download and conversion cache (default ~/.cache/rill);
                                  when given, verified members of an http(s):// or s3://
                                  archive are kept in its members/ folder and reused
  HF_ENDPOINT, HF_TOKEN           hub address and token for hf: models`;

/** Everything `rill serve` and `deno serve mod.ts` are configured with. */
export interface ServeConfig {
  readonly model: string | undefined;
  readonly tokenizer: string | undefined;
  readonly modelId: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly cacheDir: string | undefined;
  /** Fixed tokens per scheduler step; undefined adapts it to about 40 ms a step. */
  readonly prefillChunk: number | undefined;
  /** Bytes of KV cache for all sequences; undefined takes the default budget. */
  readonly kvBudgetBytes: number | undefined;
  /** Kernel threads; 0 disables the WASM kernels; undefined uses every core. */
  readonly threads: number | undefined;
  readonly serving: ServingConfig;
}

/**
 * Reads the configuration from flags, then environment variables, then defaults.
 *
 * @throws {RangeError} for a number out of range
 */
export function readServeConfig(
  args: readonly string[],
  env: (name: string) => string | undefined,
): ServeConfig {
  const { flags } = parseCliArgs(args);
  const get = (flag: string, variable: string): string | undefined => {
    const value = flags.get(flag);
    if (typeof value === "string") return value;
    const fromEnv = env(variable);
    return fromEnv === undefined || fromEnv === "" ? undefined : fromEnv;
  };
  const int = (flag: string, variable: string, fallback: number, min: number): number => {
    const text = get(flag, variable);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) {
      throw new RangeError(`--${flag} (${variable}) must be an integer >= ${min}, got '${text}'`);
    }
    return value;
  };
  const optionalInt = (flag: string, variable: string, min: number): number | undefined =>
    get(flag, variable) === undefined ? undefined : int(flag, variable, 0, min);
  const list = (flag: string, variable: string): string[] =>
    (get(flag, variable) ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  return {
    model: get("model", "MODEL"),
    tokenizer: get("tokenizer", "TOKENIZER"),
    modelId: get("model-id", "RILL_MODEL_ID"),
    host: get("host", "HOST") ?? "0.0.0.0",
    port: int("port", "PORT", 8000, 0),
    cacheDir: get("cache-dir", "RILL_CACHE_DIR"),
    prefillChunk: optionalInt("prefill-chunk", "RILL_PREFILL_CHUNK", 1),
    kvBudgetBytes: bytesOption(get("kv-budget", "RILL_KV_BUDGET"), "--kv-budget (RILL_KV_BUDGET)"),
    threads: optionalInt("threads", "RILL_THREADS", 0),
    serving: {
      ...DEFAULT_SERVING_CONFIG,
      apiKeys: list("api-keys", "RILL_API_KEYS"),
      corsOrigins: list("cors-origins", "RILL_CORS_ORIGINS"),
      modelAliases: list("model-aliases", "RILL_MODEL_ALIASES"),
      maxQueue: int("max-queue", "RILL_MAX_QUEUE", DEFAULT_SERVING_CONFIG.maxQueue, 0),
      maxBatch: int("max-batch", "RILL_MAX_BATCH", DEFAULT_SERVING_CONFIG.maxBatch, 1),
      maxTokensCap: int("max-tokens", "RILL_MAX_TOKENS", DEFAULT_SERVING_CONFIG.maxTokensCap, 1),
      pingIntervalMs: int("ping-ms", "RILL_PING_MS", DEFAULT_SERVING_CONFIG.pingIntervalMs, 1),
    },
  };
}

/** A configured service: its request handler, its state, and the model load in progress. */
export interface Server {
  readonly fetch: (request: Request) => Response | Promise<Response>;
  readonly state: ServingState;
  /** Settles when the model is loaded (rejects when it could not be). */
  readonly loaded: Promise<void>;
}

/**
 * Builds the app at once and loads the model in the background, so `/health` answers
 * while the model is on its way and `/ready` turns 200 once its graph is built: requests run
 * from then on, the first ones waiting per node for weights still arriving.
 */
export function createServer(config: ServeConfig, log = defaultLog): Server {
  const state = new ServingState(config.serving, log);
  const app = createApp(state);
  if (config.serving.apiKeys.length === 0) {
    log(
      "rill: WARNING: RILL_API_KEYS is not set, so authentication is OFF: anyone who can reach " +
        "this port can use the model",
    );
  }
  const loaded = state.load(loadConfigured(config, log));
  loaded.catch(() => {});
  return { fetch: app.fetch, state, loaded };
}

async function loadConfigured(config: ServeConfig, log: (line: string) => void) {
  const started = performance.now();
  const resolved = await resolveModel(config.model, {
    ...(config.cacheDir === undefined ? {} : { cacheDir: config.cacheDir }),
    log,
  });
  const kernels = await openKernels(config.threads, log);
  const loaded = await loadService(resolved.location, {
    modelId: config.modelId ?? resolved.id,
    ...(kernels === undefined ? {} : { kernels }),
    ...(config.prefillChunk === undefined ? {} : { prefillChunk: config.prefillChunk }),
    ...(config.kvBudgetBytes === undefined ? {} : { kvBudgetBytes: config.kvBudgetBytes }),
    maxRunning: config.serving.maxBatch,
    ...(config.tokenizer === undefined ? {} : { tokenizer: config.tokenizer }),
    ...(config.cacheDir === undefined
      ? {}
      : { cache: openDiskCache(join(config.cacheDir, "members")) ?? false }),
  });
  const seconds = (performance.now() - started) / 1000;
  log(
    `rill: loaded model '${loaded.service.modelId}' from ${resolved.location} (${resolved.origin}), ` +
      `${loaded.bytes} bytes, context ${loaded.service.contextLength} tokens, ` +
      `tokenizer from ${loaded.tokenizerFrom}, ${
        kernels === undefined ? "TypeScript linears" : `${kernels.variant} kernels`
      }, graph in ${seconds.toFixed(2)} s; answering while the weights arrive`,
  );
  loaded.weightsReady.then(
    (stats) =>
      log(
        `rill: all weights in place: ${stats.bytes} bytes in ${
          ((performance.now() - started) / 1000).toFixed(2)
        } s`,
      ),
    (e) => log(`rill: loading the weights failed: ${(e as Error).message}`),
  );
  return loaded.service;
}

/** The process-wide WASM kernels, or undefined when disabled or unavailable (then TS runs). */
async function openKernels(
  threads: number | undefined,
  log: (line: string) => void,
): Promise<Kernels | undefined> {
  if (threads === 0) return undefined;
  const kernels = await sharedKernels(threads === undefined ? {} : { threads });
  if (kernels === null) log("rill: WASM kernels unavailable; running linears in TypeScript");
  return kernels ?? undefined;
}

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
};

/**
 * A byte count such as `512MiB`, `2GB` or `1000000`, or undefined when unset.
 *
 * @throws {RangeError} naming `what` when the text is not one
 */
export function bytesOption(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined || !(Number(m[1]) > 0)) {
    throw new RangeError(`${what} must be a byte count such as 512MiB or 2GB, got '${text}'`);
  }
  return Math.floor(Number(m[1]) * unit);
}

function defaultLog(line: string): void {
  console.error(line);
}

/** Runs `rill serve` until the process is stopped; returns the exit code. */
export async function serveCommand(args: string[]): Promise<number> {
  if (args.includes("--help")) {
    console.error(USAGE);
    return 0;
  }
  let config: ServeConfig;
  try {
    config = readServeConfig(args, (name) => Deno.env.get(name));
  } catch (e) {
    console.error(`rill serve: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const server = createServer(config);
  const http = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: ({ hostname, port }) => {
      console.error(`rill: listening on http://${hostname}:${port}`);
    },
  }, server.fetch);
  try {
    await server.loaded;
    console.error("rill: ready");
  } catch (e) {
    console.error(`rill serve: ${(e as Error).message}`);
    await http.shutdown();
    return 1;
  }
  await http.finished;
  return 0;
}
