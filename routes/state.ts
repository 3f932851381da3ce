import type { LoadProgress } from "../src/engine/load_service.ts";
import type { InferenceService } from "../src/engine/service.ts";
import { ServingMetrics } from "../src/scheduler/metrics.ts";
import { type QueueTicket, RequestQueue } from "../src/scheduler/queue.ts";
import { ApiError } from "./errors.ts";

/** Places in the queue for the sequences of one request. */
export interface JobTicket extends Disposable {
  /** How many places it holds. */
  readonly places: number;
  /**
   * Runs `task` once place `i` may run and frees the place when it settles; rejects with the
   * signal's reason if aborted while waiting.
   */
  run<T>(i: number, task: () => Promise<T>): Promise<T>;
  /** Frees every place (a waiting one leaves the queue). Idempotent. */
  release(): void;
}

/** Limits and switches of the HTTP service. */
export interface ServingConfig {
  /** Accepted Bearer keys; empty means no authentication. */
  readonly apiKeys: readonly string[];
  /** Allowed CORS origins (`*` for any); empty means no CORS headers. */
  readonly corsOrigins: readonly string[];
  /** Server-side cap on generated tokens per request, whatever the client asks. */
  readonly maxTokensCap: number;
  /** Requests that may wait behind the running ones before 429. */
  readonly maxQueue: number;
  /** Requests generating at once (batched by the scheduler). */
  readonly maxBatch: number;
  /** Seconds suggested in `Retry-After` with a 429. */
  readonly retryAfterSeconds: number;
  /** Milliseconds of silence after which a stream gets a `: ping` comment. */
  readonly pingIntervalMs: number;
  /** Largest accepted request body in bytes. */
  readonly maxBodyBytes: number;
  /** Other names the served model answers to in `model` (its own id always works). */
  readonly modelAliases: readonly string[];
  /** llama.cpp's `/infill` lays out suffix, prefix, middle (`--spm-infill`). */
  readonly spmInfill: boolean;
}

/** Defaults for every `ServingConfig` field. */
export const DEFAULT_SERVING_CONFIG: ServingConfig = {
  apiKeys: [],
  corsOrigins: [],
  maxTokensCap: 4096,
  maxQueue: 16,
  maxBatch: 16,
  retryAfterSeconds: 1,
  pingIntervalMs: 10_000,
  maxBodyBytes: 4 * 1024 * 1024,
  modelAliases: [],
  spmInfill: false,
};

/** What the routes share: the service once loaded, the queue, the metrics, the config. */
export class ServingState {
  /** The configuration, defaults filled in. */
  readonly config: ServingConfig;
  /** Admission of generations (429 when full). */
  readonly queue: RequestQueue;
  /** The counters `/metrics` reports. */
  readonly metrics: ServingMetrics;
  /** Receives one line per finished or cancelled generation. */
  readonly log: (line: string) => void;
  #service: InferenceService | undefined;
  #loadError: Error | undefined;
  /** Set by `shutdown`: what new and unfinished generations are answered with. */
  #stopping: ApiError | undefined;
  /** The admitted generations: their controllers, and a promise settled at their release. */
  readonly #admitted = new Map<AbortController, Promise<void>>();
  #progress: (() => LoadProgress | undefined) | undefined;
  #broken = false;

  /** A state with no service yet (`/ready` answers 503 until `load` has one). */
  constructor(config: Partial<ServingConfig> = {}, log: (line: string) => void = () => {}) {
    this.config = { ...DEFAULT_SERVING_CONFIG, ...config };
    this.log = log;
    this.queue = new RequestQueue({
      maxWaiting: this.config.maxQueue,
      maxRunning: this.config.maxBatch,
      retryAfterSeconds: this.config.retryAfterSeconds,
    });
    this.metrics = new ServingMetrics();
    this.metrics.bindQueue(this.queue);
    this.metrics.bindScheduler(() => this.#service?.stats);
  }

  /** The loaded service, if any. */
  get service(): InferenceService | undefined {
    return this.#service;
  }

  /**
   * Why loading failed, if it did: before the service started answering, or after (a weight
   * still arriving failed; see `fail`).
   */
  get loadError(): Error | undefined {
    return this.#loadError;
  }

  /** How far the model's download, conversion or load is, while the loader tells. */
  get progress(): LoadProgress | undefined {
    return this.#progress?.();
  }

  /** Reads the loading progress from `read` from now on (what `/ready` shows). */
  trackProgress(read: () => LoadProgress | undefined): void {
    this.#progress = read;
  }

  /** True once the service is loaded and nothing failed since. */
  get ready(): boolean {
    return this.#service !== undefined && !this.#broken;
  }

  /**
   * Takes the model out of service after it started answering (a weight that arrived late
   * failed to load or to verify): requests get a 503 from then on, and `/ready` says failed.
   */
  fail(error: Error): void {
    this.#loadError ??= error;
    this.#broken = true;
  }

  /** Waits for `loading` and keeps its result (or its failure, served as 503). */
  async load(loading: InferenceService | Promise<InferenceService>): Promise<void> {
    try {
      this.#service = await loading;
    } catch (error) {
      this.#loadError = error instanceof Error ? error : new Error(String(error));
      throw error;
    }
  }

  /**
   * The service when `model` names it (its id or an alias; undefined, the field left out, is
   * the served model too), else a 404 `model_not_found`; a 503 while it is not loaded.
   */
  requireModel(model: string | undefined): InferenceService {
    const service = this.requireService();
    if (
      model !== undefined && model !== service.modelId && !this.config.modelAliases.includes(model)
    ) {
      const names = [service.modelId, ...this.config.modelAliases].map((n) => `'${n}'`).join(", ");
      throw new ApiError(404, `The model '${model}' does not exist; this server serves ${names}`, {
        param: "model",
        code: "model_not_found",
      });
    }
    return service;
  }

  /** True once `shutdown` was called: generations are refused, `/ready` answers 503. */
  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /**
   * Takes `places` places in the queue (one per sequence) for a generation that `controller`
   * aborts. When a shutdown ends the generation, the controller is aborted with the `ApiError`
   * to answer it with.
   *
   * @throws {ApiError} 503 once `shutdown` was called
   * @throws {QueueFullError} when the waiting places left are fewer than those asked for
   */
  admit(controller: AbortController, places = 1): JobTicket {
    if (this.#stopping) throw this.#stopping;
    const tickets: QueueTicket[] = [];
    try {
      for (let i = 0; i < places; i++) tickets.push(this.queue.admit(controller.signal));
    } catch (error) {
      for (const ticket of tickets) ticket.release();
      throw error;
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#admitted.set(controller, promise);
    const release = () => {
      for (const ticket of tickets) ticket.release();
      this.#admitted.delete(controller);
      resolve();
    };
    const run = async <T>(i: number, task: () => Promise<T>): Promise<T> => {
      const ticket = tickets[i]!;
      try {
        await ticket.ready;
        return await task();
      } finally {
        ticket.release();
      }
    };
    return { places, run, release, [Symbol.dispose]: release };
  }

  /**
   * Stops admitting generations, lets the admitted ones finish for up to `graceMs`, then
   * ends those left with a 503 `server_shutting_down` error (a stream gets it as its final
   * event). Resolves once every admitted generation was released.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.#stopping ??= new ApiError(503, "The server is shutting down; retry the request", {
      code: "server_shutting_down",
      headers: { "Retry-After": String(this.config.retryAfterSeconds) },
    });
    const settled = () => Promise.all(this.#admitted.values());
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    await Promise.race([settled(), graceOver]);
    clearTimeout(timer);
    for (const controller of this.#admitted.keys()) controller.abort(this.#stopping);
    await settled();
  }

  /**
   * The service, or a 503 saying it is still loading or failed to load (the reason is in the
   * server log only: it may quote the files it comes from).
   */
  requireService(): InferenceService {
    if (this.#service && !this.#broken) return this.#service;
    if (this.#loadError) {
      throw new ApiError(503, "The model failed to load; the server log says why", {
        code: "model_load_failed",
      });
    }
    throw new ApiError(503, "Model is still loading", {
      code: "model_not_ready",
      headers: { "Retry-After": String(this.config.retryAfterSeconds) },
    });
  }
}
