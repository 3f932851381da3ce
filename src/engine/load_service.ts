import { loadModel } from "../graph/load_model.ts";
import type { LoadStats, Model } from "../graph/model.ts";
import { openModelStream } from "../nnef/model_stream.ts";
import type { DiskCache } from "../storage/disk_cache.ts";
import { readSmallMembers } from "../nnef/small_members.ts";
import {
  chatTemplateOf,
  PLAIN_CHAT_TEMPLATE,
  readChatTemplate,
  renderChatTemplate,
} from "./chat_template.ts";
import { HfTokenizer } from "../tokenizer/hf_tokenizer.ts";
import { loadTokenizer } from "../tokenizer/load_tokenizer.ts";
import { InferenceService, systemFingerprint } from "./service.ts";
import denoJson from "../../deno.json" with { type: "json" };
import { cacheLayouts, fittingPositions, Session } from "./session.ts";
import { hiddenModel, hiddenSize } from "./hidden_model.ts";
import { everyRowModel } from "./every_row_model.ts";
import { kernelWeigh } from "./kernel_weigh.ts";
import { DEFAULT_BLOCK_SIZE, KvPool } from "../scheduler/kv_pool.ts";
import { BatchScheduler, type StepModel } from "../scheduler/step_loop.ts";
import type { IoYield } from "../scheduler/io_turn.ts";
import { type Kernels, WASM32_MAX_BYTES } from "../../kernels/mod.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { MemoryLimit } from "./memory_limit.ts";
import {
  fixedOverheadBytes,
  kvBytesPerPosition,
  type MemoryPlan,
  planMemory,
} from "./memory_budget.ts";

/** How far getting a model ready has come: a phase and its bytes. */
export interface LoadProgress {
  /** Downloading from the hub, converting to an archive, or placing the archive's members. */
  readonly phase: "download" | "convert" | "load";
  /** The file in progress, when the phase goes file by file. */
  readonly what?: string;
  /** Bytes done so far. */
  readonly doneBytes: number;
  /** Undefined while unknown (a download without a length, a `.tgz` without an index). */
  readonly totalBytes: number | undefined;
}

/** Options of `loadService`. */
export interface LoadServiceOptions {
  /** Name clients see in `/v1/models`. */
  readonly modelId: string;
  /** Tokenizer file or folder; default: the archive's own `tokenizer.json`. */
  readonly tokenizer?: string;
  /** Fixed tokens per scheduler step (default: adapted so that a step takes `stepMs`). */
  readonly prefillChunk?: number;
  /** Target duration of one scheduler step in milliseconds (default 100). */
  readonly prefillBudgetMs?: number;
  /** Bytes of KV cache for all sequences (default: see {@link defaultKvBudget}). */
  readonly kvBudgetBytes?: number;
  /** Sequences running at once (default 16). */
  readonly maxRunning?: number;
  /** Reuse the KV blocks of earlier requests with the same prefix (default true). */
  readonly prefixCache?: boolean;
  /** How the scheduler gives the event loop its turns (see `SchedulerOptions.ioYield`). */
  readonly ioYield?: IoYield;
  /** WASM kernels to run the linear layers in (the caller owns and closes them). */
  readonly kernels?: Kernels;
  /**
   * Once the weights are in, run a short scratch sequence, so that the first request runs code
   * V8 has already compiled (default true).
   */
  readonly warmUp?: boolean;
  /**
   * Where verified members of a remote archive are kept and reused, or false for none
   * (default: `$RILL_CACHE_DIR/members` when `RILL_CACHE_DIR` is set).
   */
  readonly cache?: DiskCache | false;
  /**
   * The memory the process may use: the model is refused (before its weights are all in) when
   * its weights, one full-context sequence and the process would not fit, and what is left
   * is its KV budget (see `planMemory`).
   */
  readonly memoryLimit?: MemoryLimit;
  /**
   * Called once, as soon as the archive is open, with a function that tells how many of its
   * bytes are in place so far (of the member sizes listed yet); it stays valid after the load.
   */
  readonly onLoading?: (progress: () => LoadProgress) => void;
  /** Most ms the whole load may take (default: see `loadTimeoutMs`, 30 minutes). */
  readonly loadTimeoutMs?: number;
  /** Most ms one member may take (default: see `memberTimeoutMs`, 5 minutes). */
  readonly memberTimeoutMs?: number;
}

/** A loaded service and what it came from. */
export interface LoadedService {
  /** The service, answering once the graph is built. */
  readonly service: InferenceService;
  /** The model graph behind the service (for a caller running its own sessions). */
  readonly model: Model;
  /** Bytes of the weight members (`.dat`) of the archive, all of which are placed once. */
  readonly bytes: number;
  /** Where the tokenizer came from: the path given, or the archive's name and `(tokenizer.json)`. */
  readonly tokenizerFrom: string;
  /**
   * Resolves with the load's figures once every weight is in place (the service answers
   * before that: the first requests wait per node for the weights they read); rejects when
   * the weights could not be loaded.
   */
  readonly weightsReady: Promise<LoadStats>;
  /** The memory budget, when a limit was given. */
  readonly memory: MemoryPlan | undefined;
}

/** The small members read besides the weights. */
const SIDE_MEMBERS = [
  "tokenizer_config.json",
  "chat_template.jinja",
  "tokenizer.json",
  "generation_config.json",
  "config.json",
];

/** The members placed into memory as they arrive: the weights. */
const PLACED = /\.dat$/;

/**
 * Loads a model archive (path or URL), its tokenizer and chat template into an
 * `InferenceService`. The archive is opened once: the model takes its weights (a `.tgz` is
 * streamed in one pass, not opened whole in memory, each weight placed as it passes) while the
 * tokenizer's members are read out of the same pass. Resolves once the graph is built and those
 * members are in; the weights may keep arriving (see `weightsReady`), each placed once. A
 * `.tgz` made by the converter lists its members first (`rill-index.json`), so it answers as
 * early as a tar; without that index, only the end of the stream tells that a member is
 * absent, so it resolves then.
 *
 * @example
 * ```ts ignore
 * const kernels = await loadKernels({ threads: 2 });
 * const { service, weightsReady } = await loadService("model.nnef.tar", {
 *   modelId: "stories",
 *   kernels,
 * });
 * for await (const event of service.generate(service.encodePrompt("Once upon a time"), {
 *   sampling: { temperature: 0 },
 *   stop: [],
 *   maxTokens: 32,
 * })) {
 *   if (event.type === "text") console.log(event.text);
 * }
 * await weightsReady;
 * ```
 * @throws {TypeError} when there is no tokenizer in the archive and none was given
 * @throws {RangeError} when the model does not fit in `options.memoryLimit`
 */
export async function loadService(
  location: string,
  options: LoadServiceOptions,
): Promise<LoadedService> {
  const stream = await openModelStream(location, {
    ...(options.cache === undefined ? {} : { cache: options.cache }),
    ...(options.loadTimeoutMs === undefined ? {} : { loadTimeoutMs: options.loadTimeoutMs }),
    ...(options.memberTimeoutMs === undefined
      ? {}
      : { loader: { memberTimeoutMs: options.memberTimeoutMs } }),
  });
  // Both claim their members synchronously, before the stream's first bytes can arrive.
  const loading = loadModel(stream, {
    ...(options.kernels === undefined ? {} : { kernels: options.kernels }),
    lazy: true,
  });
  let listedBytes = 0;
  let placed = false;
  const reading = readSmallMembers(stream, SIDE_MEMBERS, (member) => {
    if (PLACED.test(member.name) || SIDE_MEMBERS.includes(member.name)) listedBytes += member.size;
  });
  options.onLoading?.(() => ({
    phase: "load",
    doneBytes: placed ? listedBytes : Math.min(stream.stats.bytesWritten, listedBytes),
    totalBytes: listedBytes === 0 ? undefined : listedBytes,
  }));
  loading.catch(() => {});
  reading.catch(() => {});
  let handedOver = false;
  try {
    const graph = await loading;
    const side = await reading;
    const name = stream.name;
    const json = (member: string) => readJsonMember(name, member, side.files.get(member));
    const config = json("tokenizer_config.json");
    const templateBytes = side.files.get("chat_template.jinja");
    let template = templateBytes === undefined
      ? chatTemplateOf(config)
      : new TextDecoder().decode(templateBytes);
    let tokenizer: Tokenizer;
    let tokenizerFrom: string;
    if (options.tokenizer !== undefined) {
      tokenizer = await loadTokenizer(options.tokenizer);
      tokenizerFrom = options.tokenizer;
      template ??= await readChatTemplate(await folderOf(options.tokenizer));
    } else if (side.files.has("tokenizer.json")) {
      tokenizer = new HfTokenizer(
        json("tokenizer.json"),
        config,
        // Without a generation config, transformers generates with the model config's end ids.
        side.files.has("generation_config.json")
          ? json("generation_config.json")
          : json("config.json"),
      );
      tokenizerFrom = `${name} (tokenizer.json)`;
    } else {
      throw new TypeError(
        `${name} holds no tokenizer.json; give one with --tokenizer or TOKENIZER`,
      );
    }
    const contextLength = fittingPositions(graph, CONTEXT_CEILING);
    const bounded = contextLength < CONTEXT_CEILING;
    const memory = options.memoryLimit === undefined ? undefined : planMemory(options.memoryLimit, {
      model: options.modelId,
      weightBytes: side.weightBytes,
      fixedBytes: fixedOverheadBytes((options.kernels?.maxThreads ?? 1) - 1),
      kvBytesPerPosition: kvBytesPerPosition(graph),
      contextLength: bounded ? contextLength : undefined,
      ...(options.kernels === undefined
        ? {}
        : { addressSpaceBytes: addressSpace(options.kernels) }),
    });
    // The model reads from the stream until its last weight is in. Its figures count all the
    // stream wrote, the members read here too.
    const weightsReady = graph.weightsReady.then(
      () => stream.close(),
      async (e) => {
        // The loads still pending fail saying which weight stopped the load.
        await stream.close(e instanceof Error ? e : undefined);
        throw e;
      },
    ).then(() => {
      placed = true;
      const stats = graph.loadStats!;
      const sideBytes = [...side.files.values()].reduce((n, b) => n + b.length, 0);
      return {
        members: stats.members - side.files.size,
        bytes: stats.bytes - sideBytes,
        graphMs: stats.graphMs,
        weightsMs: stats.weightsMs,
        q4Tuning: stats.q4Tuning,
      };
    });
    weightsReady.catch(() => {});
    handedOver = true;
    const model = modelScheduler(graph, {
      ...options,
      ...(options.warmUp === false ? {} : { warmUpAfter: weightsReady }),
      // What the memory limit leaves, but no more than the default room (an explicit budget wins).
      kvBudgetBytes: options.kvBudgetBytes ?? Math.min(
        memory?.kvBudgetBytes ?? Infinity,
        defaultKvBudget(kvBytesPerPosition(graph), contextLength, options.maxRunning ?? 16),
      ),
    });
    const renderConfig = tokenizer instanceof HfTokenizer
      ? { ...tokenizer.config, ...config }
      : config;
    const service = new InferenceService({
      model,
      tokenizer,
      modelId: options.modelId,
      embeddingSize: hiddenSize(graph),
      scoresPrompts: everyRowModel(graph) !== null,
      weightBytes: side.weightBytes,
      ...(options.kernels ? { weigh: kernelWeigh(options.kernels) } : {}),
      systemFingerprint: systemFingerprint([
        `rill ${denoJson.version}`,
        options.modelId,
        location,
        String(side.weightBytes),
        tokenizerFrom,
        options.kernels === undefined ? "typescript" : `kernels ${options.kernels.variant}`,
      ]),
      renderChat: (messages, variables, addGenerationPrompt) =>
        renderChatTemplate(renderConfig, messages, {
          ...(template === null ? {} : { template }),
          ...(variables === undefined ? {} : { variables }),
          ...(addGenerationPrompt === undefined ? {} : { addGenerationPrompt }),
        }),
      chatTemplate: template ?? PLAIN_CHAT_TEMPLATE,
    });
    return {
      service,
      model: graph,
      bytes: side.weightBytes,
      tokenizerFrom,
      weightsReady,
      memory,
    };
  } finally {
    if (!handedOver) {
      // Closing the stream fails whatever still waits on it; let the load settle first.
      await stream.close().catch(() => {});
      await loading.then((graph) => graph.weightsReady, () => {}).catch(() => {});
      await reading.catch(() => {});
    }
  }
}

/** Positions the warm-up prefills, then decodes. */
const WARM_UP_PROMPT = 8;
const WARM_UP_DECODE = 4;

/**
 * Runs a scratch sequence over `pool` (a prompt that takes the batched kernels, then a few
 * decode steps) and gives its blocks back: V8 compiles the executor, the ops and the kernels
 * it runs, which the first request would otherwise run cold. 110M, 2 threads, three starts
 * each: the first request's first token came after 266-390 ms without it, 205-218 ms with it;
 * it costs about 0.1 s at load (0.3 s for 1.1B). Its timings stay out of the thread policy.
 * Skipped when the pool has no room; a failure only costs the warm-up.
 */
function warmUp(graph: Model, pool: KvPool, kernels: Kernels | null): void {
  const session = new Session(graph, { kernels: kernels ?? false, pool, adaptiveThreads: false });
  try {
    if (!session.reserve(WARM_UP_PROMPT + WARM_UP_DECODE)) return;
    // Token 0 is in every vocabulary; which tokens run does not change the code that runs.
    session.prefill(new Array<number>(WARM_UP_PROMPT).fill(0));
    for (let i = 0; i < WARM_UP_DECODE; i++) session.decode(0);
  } catch {
    // The first request meets whatever failed here, with its own error.
  } finally {
    session.reset();
  }
}

/** The folder of a tokenizer path (itself when it is a folder). */
async function folderOf(path: string): Promise<string> {
  if ((await Deno.stat(path)).isDirectory) return path;
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "." : path.slice(0, slash) || "/";
}

/** A JSON member's object ({} when absent or not an object). */
function readJsonMember(
  archive: string,
  name: string,
  bytes: Uint8Array | undefined,
): Record<string, unknown> {
  if (bytes === undefined) return {};
  const text = new TextDecoder().decode(bytes);
  try {
    const value = JSON.parse(text);
    return typeof value === "object" && value !== null ? value : {};
  } catch (e) {
    throw new SyntaxError(`${archive}: member ${name} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Options of {@link modelScheduler}. */
export type ModelSchedulerOptions =
  & Pick<
    LoadServiceOptions,
    | "kernels"
    | "prefillChunk"
    | "prefillBudgetMs"
    | "kvBudgetBytes"
    | "maxRunning"
    | "prefixCache"
    | "ioYield"
  >
  & {
    /** Once it resolves (the weights are in), a short scratch sequence runs (see `warmUp`). */
    readonly warmUpAfter?: Promise<unknown>;
  };

/**
 * The graph runtime behind the `TokenModel` interface: a batching scheduler over sessions that
 * share one paged KV pool. Steps wait per node for weights still arriving (the first pass of a
 * lazy load).
 */
export function modelScheduler(
  graph: Model,
  options: ModelSchedulerOptions = {},
): BatchScheduler<Session> {
  const kernels = options.kernels ?? null;
  const positions = fittingPositions(graph, CONTEXT_CEILING);
  // The last generated token is sampled, never run: one more than the positions.
  const contextLength = positions + 1;
  const bytesPerPosition = kvBytesPerPosition(graph);
  const bytesPerBlock = bytesPerPosition * DEFAULT_BLOCK_SIZE;
  const budget = options.kvBudgetBytes ??
    defaultKvBudget(bytesPerPosition, positions, options.maxRunning ?? 16);
  const blocks = Math.max(
    Math.ceil(Math.min(positions, CONTEXT_CEILING) / DEFAULT_BLOCK_SIZE),
    Math.floor(budget / Math.max(1, bytesPerBlock)),
  );
  const pool = new KvPool(cacheLayouts(graph), { blocks, kernels });
  options.warmUpAfter?.then(() => warmUp(graph, pool, kernels), () => {});
  const model: StepModel<Session> = {
    contextLength,
    pool,
    newSequence: (kind) => {
      const variant = kind === "hidden"
        ? hiddenModel(graph)
        : kind === "rows"
        ? everyRowModel(graph)
        : graph;
      if (variant === null) throw new TypeError(kind === "hidden" ? NO_HIDDEN_STATE : NO_ROWS);
      return new Session(variant, { kernels: kernels ?? false, pool, everyRow: kind === "rows" });
    },
    step: (work, pause) => Session.step(work.map((w) => ({ session: w.seq, ids: w.ids })), pause),
  };
  return new BatchScheduler(model, {
    ...(options.prefillChunk === undefined ? {} : { tokenBudget: options.prefillChunk }),
    ...(options.prefillBudgetMs === undefined ? {} : { stepMs: options.prefillBudgetMs }),
    ...(options.maxRunning === undefined ? {} : { maxRunning: options.maxRunning }),
    ...(options.prefixCache === undefined ? {} : { prefixCache: options.prefixCache }),
    ...(options.ioYield === undefined ? {} : { ioYield: options.ioYield }),
  });
}

/** Why a model cannot give embeddings. */
const NO_HIDDEN_STATE =
  "This model's logits are not a linear of a hidden state: it gives no embeddings";
/** Why a model cannot give the logits of a prompt's positions. */
const NO_ROWS =
  "This model's logits are not a classifier's of each position: it gives no prompt log-probabilities";

/**
 * The default KV budget in bytes: room for `sequences` full contexts, but at most a quarter
 * of the memory the system has free (and at least one full context).
 */
export function defaultKvBudget(
  bytesPerPosition: number,
  contextLength: number,
  sequences: number,
): number {
  const context = bytesPerPosition * contextLength;
  let free = Infinity;
  try {
    free = Deno.systemMemoryInfo().available;
  } catch {
    // No permission to read it (or no such figure here): the per-sequence room decides.
  }
  return Math.max(context, Math.min(context * sequences, free / 4));
}

/** Contexts are searched up to this many positions; a graph that accepts it sets no bound. */
const CONTEXT_CEILING = 1 << 24;

/** Bytes the weights and KV caches may take in the kernels' memory: all but its fixed part. */
function addressSpace(kernels: Kernels): number {
  return WASM32_MAX_BYTES - (kernels.memory.buffer.byteLength - kernels.weightBytes);
}
