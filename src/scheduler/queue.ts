/** Thrown by `RequestQueue.admit` when every waiting place is taken. */
export class QueueFullError extends RangeError {
  /** Seconds a client should wait before retrying. */
  readonly retryAfterSeconds: number;

  /** The error for a queue of `maxWaiting` places, telling to retry after that many seconds. */
  constructor(maxWaiting: number, retryAfterSeconds: number) {
    super(`Request queue is full (${maxWaiting} waiting)`);
    this.name = "QueueFullError";
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A place in the queue: wait for `ready`, then run, then `release()` (also on abort). */
export interface QueueTicket extends Disposable {
  /** Resolves when this request may run; rejects with the signal's reason if aborted first. */
  readonly ready: Promise<void>;
  /** Frees the running slot, or leaves the queue if still waiting. Idempotent. */
  release(): void;
}

export interface RequestQueueOptions {
  /** How many requests may wait behind the running ones; 0 allows none. */
  readonly maxWaiting: number;
  /** How many run at once (default 1). */
  readonly maxRunning?: number;
  /** The `Retry-After` hint given with `QueueFullError` (default 1). */
  readonly retryAfterSeconds?: number;
}

interface Waiter {
  start(): void;
  fail(reason: unknown): void;
}

/** A bounded FIFO: admission is decided at once, up to `maxRunning` run at a time in arrival order. */
export class RequestQueue {
  readonly #maxWaiting: number;
  readonly #maxRunning: number;
  readonly #retryAfter: number;
  readonly #waiting: Waiter[] = [];
  #running = 0;

  /** An empty queue. */
  constructor(options: RequestQueueOptions) {
    if (!Number.isInteger(options.maxWaiting) || options.maxWaiting < 0) {
      throw new RangeError(`Queue size must be a non-negative integer, got ${options.maxWaiting}`);
    }
    this.#maxWaiting = options.maxWaiting;
    this.#maxRunning = Math.max(1, options.maxRunning ?? 1);
    this.#retryAfter = options.retryAfterSeconds ?? 1;
  }

  /** Requests waiting for a turn. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Requests running now. */
  get running(): number {
    return this.#running;
  }

  /**
   * Takes a place in the queue or throws `QueueFullError` synchronously, so the caller
   * can answer 429 before sending any byte.
   */
  admit(signal?: AbortSignal): QueueTicket {
    if (this.#running >= this.#maxRunning && this.#waiting.length >= this.#maxWaiting) {
      throw new QueueFullError(this.#maxWaiting, this.#retryAfter);
    }
    let state: "waiting" | "running" | "done" = "waiting";
    let waiter: Waiter | undefined;
    const release = () => {
      if (state === "running") {
        state = "done";
        this.#running--;
        this.#next();
      } else if (state === "waiting") {
        state = "done";
        const at = waiter === undefined ? -1 : this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        waiter?.fail(signal?.reason ?? new DOMException("Request left the queue", "AbortError"));
      }
      signal?.removeEventListener("abort", release);
    };
    const ready = new Promise<void>((resolve, reject) => {
      waiter = {
        start: () => {
          state = "running";
          this.#running++;
          resolve();
        },
        fail: reject,
      };
    });
    ready.catch(() => {});
    if (signal?.aborted) {
      release();
      return { ready, release, [Symbol.dispose]: release };
    }
    signal?.addEventListener("abort", release, { once: true });
    if (this.#running < this.#maxRunning && this.#waiting.length === 0) waiter!.start();
    else this.#waiting.push(waiter!);
    return { ready, release, [Symbol.dispose]: release };
  }

  #next(): void {
    if (this.#running < this.#maxRunning) this.#waiting.shift()?.start();
  }
}
