/** `deno task serve`: the OpenAI-compatible HTTP service (also behind `deno serve mod.ts`). */
import { parseCliArgs } from "./args.ts";
import { catchStrayErrors, errorMessage } from "./top_level.ts";
import { redactLocation, redactText } from "../src/storage/redact.ts";
import { createApp, ServingState } from "../routes/mod.ts";
import { DEFAULT_SERVING_CONFIG, type ServingConfig } from "../routes/state.ts";
import { resolveModel } from "../models/resolve.ts";
import { type LoadProgress, loadService } from "../src/engine/load_service.ts";
import { ProgressReporter } from "./progress.ts";
import type { Kernels } from "../kernels/mod.ts";
import { type Q4Tuning, tileSpeedups } from "../kernels/q4_tuning.ts";
import { closeSharedKernels, sharedKernels } from "../src/engine/shared_kernels.ts";
import { checkCacheDir, openDiskCache } from "../src/storage/disk_cache.ts";
import { type MemoryLimit, parseByteSize, readMemoryLimit } from "../src/engine/memory_limit.ts";
import { type MemoryPlan, mib } from "../src/engine/memory_budget.ts";
import { missingPermissionsMessage } from "./permissions.ts";
import { join } from "node:path";
import { LoopbackYield } from "../src/scheduler/io_turn.ts";

/** Milliseconds running requests get to finish after SIGINT/SIGTERM: Deno Deploy kills at 5 s. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 3000;

const USAGE = `Usage: rill serve [options]          (flags win over environment variables)

  --model, MODEL                  local .nnef.tar/.tgz/folder, http(s):// or s3:// URL, a GGUF
                                  file or Hugging Face folder (converted once into the cache), or
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
  --cache-dir, RILL_CACHE_DIR     download and conversion cache (default ~/.cache/rill);
                                  when given, verified members of an http(s):// or s3://
                                  archive are kept in its members/ folder and reused
  --memory-limit, RILL_MEMORY_LIMIT  memory the process may use, e.g. 768M or 4G (default: the
                                  cgroup's limit or the machine's memory); a model that does not
                                  fit is refused at start, the rest is the KV cache budget
  --spm-infill, RILL_SPM_INFILL   llama.cpp's /infill lays out suffix, prefix, middle (as
                                  llama-server's --spm-infill) for models trained that way
  --shutdown-grace-ms, RILL_SHUTDOWN_GRACE_MS  after SIGINT or SIGTERM, how long running
                                  requests may finish before they are ended (default ${DEFAULT_SHUTDOWN_GRACE_MS})
  --load-timeout, RILL_LOAD_TIMEOUT      seconds the whole model load may take (default 1800;
                                  0: no limit)
  --member-timeout, RILL_MEMBER_TIMEOUT  seconds one archive member (or hub file) may take from
                                  its first request (default 300; 0: no limit)
  HF_ENDPOINT, HF_TOKEN           hub address and token for hf: models
  RILL_MAX_INFLATED_BYTES         most bytes a .tgz may inflate to (default: 64 MiB plus 16
                                  times its size; a gzip bomb fails there)`;

export const SERVE_FLAGS = {
  booleans: ["help", "spm-infill"],
  values: [
    "model",
    "tokenizer",
    "model-id",
    "host",
    "port",
    "api-keys",
    "cors-origins",
    "max-queue",
    "max-tokens",
    "ping-ms",
    "prefill-chunk",
    "threads",
    "cache-dir",
    "model-aliases",
    "max-batch",
    "kv-budget",
    "memory-limit",
    "shutdown-grace-ms",
    "load-timeout",
    "member-timeout",
  ],
};

/** Everything `rill serve` and `deno serve mod.ts` are configured with. */
export interface ServeConfig {
  /** The model location (`MODEL`); undefined serves the default model. */
  readonly model: string | undefined;
  /** A tokenizer file or folder for an archive without one (`TOKENIZER`). */
  readonly tokenizer: string | undefined;
  /** The model id clients see (`RILL_MODEL_ID`); default: the resolved model's id. */
  readonly modelId: string | undefined;
  /** The address to listen on. */
  readonly host: string;
  /** The port to listen on. */
  readonly port: number;
  /** Where converted models and verified members are kept (`RILL_CACHE_DIR`). */
  readonly cacheDir: string | undefined;
  /** Fixed tokens per scheduler step; undefined adapts it to about 100 ms a step. */
  readonly prefillChunk: number | undefined;
  /** Bytes of KV cache for all sequences; undefined takes the default budget. */
  readonly kvBudgetBytes: number | undefined;
  /** Kernel threads; 0 disables the WASM kernels; undefined uses every core. */
  readonly threads: number | undefined;
  /** The memory limit given; undefined reads the cgroup's and the machine's at start. */
  readonly memoryLimit: MemoryLimit | undefined;
  /** After SIGINT/SIGTERM, how long running requests may finish before they are ended. */
  readonly shutdownGraceMs: number;
  /** Most ms the model load may take; undefined: the default (see `loadTimeoutMs`). */
  readonly loadTimeoutMs?: number | undefined;
  /** Most ms one member may take; undefined: the default (see `memberTimeoutMs`). */
  readonly memberTimeoutMs?: number | undefined;
  /** What the routes are configured with (keys, CORS, queue, limits). */
  readonly serving: ServingConfig;
}

/**
 * Reads the configuration from flags, then environment variables, then defaults.
 *
 * @throws {RangeError} for a number or size out of range
 * @throws {TypeError} for an unknown flag or a positional argument
 */
export function readServeConfig(
  args: readonly string[],
  env: (name: string) => string | undefined,
): ServeConfig {
  const { positional, flags } = parseCliArgs(args, SERVE_FLAGS);
  if (positional.length > 0) {
    throw new TypeError(`Unexpected argument '${positional[0]}' (the model is given with --model)`);
  }
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
  const switchOn = (variable: string): boolean => {
    const text = env(variable)?.toLowerCase();
    if (text === undefined || ["", "0", "false", "no", "off"].includes(text)) return false;
    if (["1", "true", "yes", "on"].includes(text)) return true;
    throw new RangeError(`${variable} must be 1 or 0 (true or false), got '${env(variable)}'`);
  };
  const seconds = (flag: string, variable: string): number | undefined => {
    const text = get(flag, variable);
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(
        `--${flag} (${variable}) must be a number of seconds >= 0, got '${text}'`,
      );
    }
    return value * 1000;
  };
  const list = (flag: string, variable: string): string[] =>
    (get(flag, variable) ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  const memoryLimit = get("memory-limit", "RILL_MEMORY_LIMIT");
  const kvBudget = get("kv-budget", "RILL_KV_BUDGET");
  return {
    model: get("model", "MODEL"),
    tokenizer: get("tokenizer", "TOKENIZER"),
    modelId: get("model-id", "RILL_MODEL_ID"),
    host: get("host", "HOST") ?? "0.0.0.0",
    port: int("port", "PORT", 8000, 0),
    cacheDir: get("cache-dir", "RILL_CACHE_DIR"),
    prefillChunk: optionalInt("prefill-chunk", "RILL_PREFILL_CHUNK", 1),
    kvBudgetBytes: kvBudget === undefined
      ? undefined
      : parseByteSize(kvBudget, "--kv-budget (RILL_KV_BUDGET)"),
    threads: optionalInt("threads", "RILL_THREADS", 0),
    memoryLimit: memoryLimit === undefined ? undefined : {
      bytes: parseByteSize(memoryLimit, "--memory-limit (RILL_MEMORY_LIMIT)"),
      from: flags.has("memory-limit") ? "--memory-limit" : "RILL_MEMORY_LIMIT",
    },
    shutdownGraceMs: int(
      "shutdown-grace-ms",
      "RILL_SHUTDOWN_GRACE_MS",
      DEFAULT_SHUTDOWN_GRACE_MS,
      0,
    ),
    loadTimeoutMs: seconds("load-timeout", "RILL_LOAD_TIMEOUT"),
    memberTimeoutMs: seconds("member-timeout", "RILL_MEMBER_TIMEOUT"),
    serving: {
      ...DEFAULT_SERVING_CONFIG,
      apiKeys: list("api-keys", "RILL_API_KEYS"),
      corsOrigins: list("cors-origins", "RILL_CORS_ORIGINS"),
      modelAliases: list("model-aliases", "RILL_MODEL_ALIASES"),
      maxQueue: int("max-queue", "RILL_MAX_QUEUE", DEFAULT_SERVING_CONFIG.maxQueue, 0),
      maxBatch: int("max-batch", "RILL_MAX_BATCH", DEFAULT_SERVING_CONFIG.maxBatch, 1),
      maxTokensCap: int("max-tokens", "RILL_MAX_TOKENS", DEFAULT_SERVING_CONFIG.maxTokensCap, 1),
      pingIntervalMs: int("ping-ms", "RILL_PING_MS", DEFAULT_SERVING_CONFIG.pingIntervalMs, 1),
      spmInfill: flags.has("spm-infill") || switchOn("RILL_SPM_INFILL"),
    },
  };
}

/** A configured service: its request handler, its state, and the model load in progress. */
export interface Server {
  /** Answers a request; pass the server's `info` so that `shutdown` waits for its delivery. */
  readonly fetch: (request: Request, info?: Deno.ServeHandlerInfo) => Response | Promise<Response>;
  /** What the routes share: the service once loaded, the queue, the metrics. */
  readonly state: ServingState;
  /** Settles when the model is loaded (rejects when it could not be). */
  readonly loaded: Promise<void>;
  /**
   * Stops admitting generations, lets the running ones finish within the grace period and
   * ends the others with a final error event, waits for the responses to be delivered, then
   * stops the kernel workers.
   */
  shutdown(): Promise<void>;
}

/**
 * Builds the app at once and loads the model in the background (`listening` false: for
 * requests from this process alone, with no warning about an open port), so `/health` answers
 * while the model is on its way and `/ready` turns 200 once its graph is built: requests run
 * from then on, the first ones waiting per node for weights still arriving. A weight that
 * then fails to arrive or to verify fails the requests waiting for it; the process stays up,
 * answers 503 from then on, and `/ready` says failed.
 *
 * @example
 * ```ts ignore
 * const server = createServer(readServeConfig(Deno.args, (name) => Deno.env.get(name)));
 * Deno.serve((request, info) => server.fetch(request, info));
 * await server.loaded;
 * ```
 */
export function createServer(
  config: ServeConfig,
  output = defaultLog,
  { listening = true }: { listening?: boolean } = {},
): Server {
  // Every line, whatever it quotes (a URL in an error's text), without credentials.
  const log = (line: string) => output(redactText(line));
  const state = new ServingState(config.serving, log);
  const app = createApp(state);
  if (listening && config.serving.apiKeys.length === 0) {
    log(
      "rill: WARNING: RILL_API_KEYS is not set, so authentication is OFF: anyone who can reach " +
        "this port can use the model",
    );
  }
  const terminal = output === defaultLog && Deno.stderr.isTerminal();
  // The scheduler's turns of the event loop go through a socket, so that the server's own
  // sockets are looked at while it computes (see src/scheduler/io_turn.ts).
  const turns = LoopbackYield.open();
  const loaded = state.load(loadConfigured(config, state, log, terminal, turns));
  loaded.catch(() => {});
  const delivering = new Set<Promise<void>>();
  return {
    fetch(request, info) {
      // Runtimes older than `ServeHandlerInfo.completed` give none: then nothing is waited for.
      const completed = info?.completed?.catch(() => {});
      if (completed) {
        delivering.add(completed);
        completed.then(() => delivering.delete(completed));
      }
      return app.fetch(request);
    },
    state,
    loaded,
    async shutdown() {
      await state.shutdown(config.shutdownGraceMs);
      await Promise.all(delivering);
      (await turns)?.close();
      if (config.threads !== 0) await closeSharedKernels();
    },
  };
}

async function loadConfigured(
  config: ServeConfig,
  state: ServingState,
  log: (line: string) => void,
  terminal: boolean,
  turns: Promise<LoopbackYield | null>,
) {
  const started = performance.now();
  if (config.cacheDir !== undefined) {
    await checkCacheDir(config.cacheDir, "--cache-dir (RILL_CACHE_DIR)");
  }
  const reporter = new ProgressReporter({
    log,
    terminal,
  });
  let latest: LoadProgress | undefined;
  state.trackProgress(() => latest);
  const limits = {
    ...(config.loadTimeoutMs === undefined ? {} : { loadTimeoutMs: config.loadTimeoutMs }),
    ...(config.memberTimeoutMs === undefined ? {} : { memberTimeoutMs: config.memberTimeoutMs }),
  };
  const resolved = await resolveModel(config.model, {
    ...(config.cacheDir === undefined ? {} : { cacheDir: config.cacheDir }),
    ...limits,
    log,
    onProgress: (progress) => {
      latest = progress;
      reporter.update(progress);
    },
  });
  const kernels = await openKernels(config.threads, log);
  const memoryLimit = config.memoryLimit ?? readMemoryLimit();
  const loadEnded = Promise.withResolvers<void>();
  const loading = loadService(resolved.location, {
    ...(memoryLimit === undefined ? {} : { memoryLimit }),
    modelId: config.modelId ?? resolved.id,
    ...(kernels === undefined ? {} : { kernels }),
    ...(config.prefillChunk === undefined ? {} : { prefillChunk: config.prefillChunk }),
    ...(config.kvBudgetBytes === undefined ? {} : { kvBudgetBytes: config.kvBudgetBytes }),
    maxRunning: config.serving.maxBatch,
    ...await turns.then((t) => (t === null ? {} : { ioYield: t.yield })),
    ...(config.tokenizer === undefined ? {} : { tokenizer: config.tokenizer }),
    ...limits,
    ...(config.cacheDir === undefined
      ? {}
      : { cache: openDiskCache(join(config.cacheDir, "members")) ?? false }),
    onLoading: (read) => {
      state.trackProgress(read);
      reporter.follow(read, loadEnded.promise);
    },
  });
  loading.then((l) => l.weightsReady).catch(() => {}).finally(loadEnded.resolve);
  const loaded = await loading;
  const seconds = (performance.now() - started) / 1000;
  log(
    `rill: loaded model '${loaded.service.modelId}' from ${
      redactLocation(resolved.location)
    } (${resolved.origin}), ` +
      `${loaded.bytes} bytes, context ${loaded.service.contextLength} tokens, ` +
      `tokenizer from ${loaded.tokenizerFrom}, ${
        kernels === undefined
          ? "TypeScript linears"
          : `${kernels.variant} kernels on ${kernels.maxThreads} thread${
            kernels.maxThreads === 1 ? "" : "s"
          }`
      }, graph in ${seconds.toFixed(2)} s; answering while the weights arrive`,
  );
  log(describeMemory(loaded.memory));
  // After the progress reporter's last line, which also waits for the load's end.
  loadEnded.promise.then(() => loaded.weightsReady).then(
    (stats) => {
      log(
        `rill: all weights in place: ${stats.bytes} bytes in ${
          ((performance.now() - started) / 1000).toFixed(2)
        } s`,
      );
      const tuned = stats.q4Tuning;
      if (tuned) log(describeTuning(tuned));
    },
    (e) => {
      state.fail(e as Error);
      log(`rill: loading the weights failed, answering 503 from now on: ${errorMessage(e)}`);
    },
  );
  return loaded.service;
}

/** What the kernels measured and chose for the Q4_0 weights, as one log line. */
function describeTuning(t: Q4Tuning): string {
  const speed = (x: number) => `${x.toFixed(2)}x`;
  const streams = t.streams > 1
    ? `${t.streams} streams (${speed(t.streamsSpeedup)} one stream's speed`
    : `one stream (several ran ${speed(t.streamsSpeedup)} its speed`;
  const sums = t.i32Sums
    ? `in i32 lanes (${speed(t.i32SumsSpeedup)} i16's speed)`
    : `in i16 lanes (i32 ran ${speed(t.i32SumsSpeedup)} their speed)`;
  const timed = tileSpeedups(t).map((s) => `${speed(s.speedup)} at ${s.tokens}`).join(", ");
  const tiles = `tiles from ${t.tileFrom} tokens (the passes' speed times ${timed})`;
  return `rill: Q4_0 weights read as ${streams} over ${
    (t.bytes / 2 ** 20).toFixed(0)
  } MiB), prompt dot products summed ${sums}, ${tiles}`;
}

/** The memory budget as one log line. */
function describeMemory(plan: MemoryPlan | undefined): string {
  if (plan === undefined) return "rill: memory limit unknown: the model's fit was not checked";
  const sequences = plan.sequences === Infinity
    ? "no KV cache"
    : `${plan.sequences} sequence${plan.sequences === 1 ? "" : "s"} of ${
      plan.contextLength ?? "unbounded"
    } tokens at ${plan.kvBytesPerPosition} bytes per position`;
  return `rill: memory: limit ${mib(plan.limit.bytes)} (${plan.limit.from}), weights ${
    mib(plan.weightBytes)
  }, process ${mib(plan.fixedBytes)}, KV cache budget ${mib(plan.kvBudgetBytes)} (${sequences})`;
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
  let http: Deno.HttpServer;
  // Listening comes first, so a taken port fails before the model starts loading.
  let answer: Server["fetch"] = () => new Response(null, { status: 503 });
  try {
    http = Deno.serve({
      hostname: config.host,
      port: config.port,
      onListen: ({ hostname, port }) => {
        console.error(`rill: listening on http://${hostname}:${port}`);
      },
    }, (request, info) => answer(request, info));
  } catch (e) {
    const why = e instanceof Deno.errors.AddrInUse
      ? "the address is already in use (another server on that port?)"
      : (e as Error).message;
    console.error(`rill serve: cannot listen on ${config.host}:${config.port}: ${why}`);
    return 1;
  }
  const server = createServer(config);
  answer = server.fetch;
  let code = 0;
  server.loaded.then(() => console.error("rill: ready"), async (e) => {
    // The reason goes to the log only: /ready and the 503s do not quote it.
    console.error(`rill serve: ${errorMessage(e)}`);
    code = 1;
    await server.shutdown();
    await http.shutdown();
  });
  onStopSignal(config.shutdownGraceMs, async () => {
    await server.shutdown();
    console.error("rill: stopped");
    await http.shutdown();
  });
  await http.finished;
  return code;
}

/**
 * The service of `deno serve mod.ts` and Deno Deploy, configured from the environment: exits
 * at once, naming the flags, when permissions are missing; starts loading the model; exits
 * when the model cannot be served (a load error, or a model that does not fit in memory),
 * and after draining on SIGINT/SIGTERM.
 */
export function serveFromEnv(): Server {
  // This process is the server: an error nothing handled is logged, never fatal.
  catchStrayErrors("rill serve", { keepRunning: true });
  const missing = missingPermissionsMessage();
  if (missing !== null) {
    console.error(missing);
    Deno.exit(1);
  }
  let config: ServeConfig;
  try {
    config = readServeConfig([], (name) => Deno.env.get(name));
  } catch (e) {
    console.error(`rill: ${(e as Error).message}`);
    Deno.exit(2);
  }
  const server = createServer(config);
  server.loaded.then(() => console.error("rill: ready"), (e) => {
    // The reason goes to the log only: /ready and the 503s do not quote it.
    console.error(`rill: ${errorMessage(e)}`);
    Deno.exit(1);
  });
  onStopSignal(config.shutdownGraceMs, async () => {
    await server.shutdown();
    console.error("rill: stopped");
    Deno.exit(0);
  });
  return server;
}

/**
 * Runs `stop` on the first SIGINT or SIGTERM. The process exits anyway a second after the
 * grace period (a client that stopped reading would hold the last write), or at a second
 * signal.
 */
function onStopSignal(graceMs: number, stop: () => Promise<void>): void {
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let stopping = false;
  const onSignal = (signal: Deno.Signal) => () => {
    if (stopping) Deno.exit(130);
    stopping = true;
    console.error(
      `rill: ${signal}: not admitting requests; running ones have ${graceMs} ms to finish`,
    );
    setTimeout(() => {
      console.error("rill: requests still running after the grace period; exiting");
      Deno.exit(1);
    }, graceMs + 1000);
    stop().catch((e) => {
      console.error(`rill: stopping failed: ${(e as Error).message}`);
      Deno.exit(1);
    });
  };
  for (const signal of signals) Deno.addSignalListener(signal, onSignal(signal));
}
