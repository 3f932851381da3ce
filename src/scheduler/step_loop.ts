/**
 * The KV-cache-aware scheduler: continuous batching over a paged KV pool.
 *
 * Each step takes one decode token from every running sequence, then prompt chunks of the
 * sequences still prefilling, within a token budget (sized so that a step lasts about
 * `stepMs`), and runs them through the model in one pass. A sequence is admitted when the
 * pool has blocks for its prompt (less the prefix found in the cache); when blocks run out
 * mid-generation, the youngest sequence is paused, its blocks freed, and it resumes later by
 * recomputing what it had (its full blocks usually still in the prefix cache). Between steps
 * the event loop runs, so that HTTP, admission and cancellation answer at once.
 *
 * A sequence that can guess its next tokens (`SequenceRequest.draft`, from a predicted text)
 * feeds them after its decode token, on the graph that gives every position's logits: each
 * guess its `next` confirms is a token made without a step of its own, and the cache forgets
 * the positions after the first wrong one. Its tokens are the ones it would make without
 * guessing.
 *
 * The model only sees sequences and token ids; what to do with the logits (sampling, stop
 * strings, text) is each request's `next`, called once per step it gets logits in.
 */
import { setImmediate } from "node:timers";
import { PrefixCache } from "./prefix_cache.ts";
import { QueueFullError } from "./queue.ts";
import { digestYield, type IoYield } from "./io_turn.ts";

/** One sequence's KV cache as the scheduler handles it (a `Session` is one). */
export interface StepSequence {
  /** Positions in its cache. */
  readonly position: number;
  /** Its blocks in position order. */
  readonly blocks: readonly number[];
  /** Takes blocks so that the cache holds `positions`; false when the pool has too few. */
  reserve(positions: number): boolean;
  /**
   * Starts from blocks holding its first `positions` (default: the blocks full), cached or
   * another sequence's.
   */
  adopt(blocks: readonly number[], positions?: number): void;
  /** Forgets the positions from `positions` on, keeping its blocks. */
  truncate(positions: number): void;
  /** Gives its blocks back. */
  reset(): void;
}

/** The block pool as the scheduler sees it. */
export interface StepPool {
  /** Positions per block. */
  readonly blockSize: number;
  /** Blocks in the pool. */
  readonly capacity: number;
  /** Bytes of one block, across every layer's cache. */
  readonly blockBytes: number;
  /** Blocks no sequence nor the prefix cache holds. */
  readonly freeBlocks: number;
  /** Takes one more reference to a block. */
  retain(id: number): void;
  /** Drops a reference to a block (free at none). */
  release(id: number): void;
  /** The references a block has. */
  refs(id: number): number;
}

/** What the scheduler drives: sequences over one model, stepped together. */
export interface StepModel<S extends StepSequence> {
  /** Positions a sequence can hold (prompt and generated tokens). */
  readonly contextLength: number;
  /** The KV blocks the sequences share. */
  readonly pool: StepPool;
  /** A sequence with an empty cache, whose steps give what `kind` says. */
  newSequence(kind: SequenceKind): S;
  /**
   * Appends each item's `ids` to its sequence; returns the logits (vocab,) of each last
   * position (the hidden state for a "hidden" sequence, the logits (ids, vocab) of every
   * position for a "rows" one). `pause`, called between the graph's steps, may ask to wait
   * for a turn of the event loop (the scheduler's way to keep the server answering during a
   * long step).
   */
  step(
    work: readonly { readonly seq: S; readonly ids: readonly number[] }[],
    pause?: () => Promise<void> | null,
  ): Promise<Float32Array[]>;
}

/**
 * What a sequence's steps give: the logits of its last position ("logits"), the hidden state
 * there instead ("hidden", see `SequenceRequest.hidden`), or the logits of every position
 * ("rows", see `SequenceRequest.promptLogits`).
 */
export type SequenceKind = "logits" | "hidden" | "rows";

/** One request to the scheduler. */
export interface SequenceRequest {
  /** The prompt's token ids (at least one). */
  readonly prompt: readonly number[];
  /** Most tokens it may generate (for admission: prompt + this must fit the pool). */
  readonly maxTokens: number;
  /**
   * Called with the logits (vocab,) after the prompt, then after each token it returned;
   * returns the next token to feed, or null when the sequence is done. Runs inside the step
   * loop: it must be quick and must not throw.
   */
  next(logits: Float32Array): number | null;
  /** Aborting it ends the sequence within one step, freeing its blocks. */
  readonly signal?: AbortSignal;
  /**
   * `next` gets the hidden state of the last position (the classifier's input) instead of
   * its logits: an embedding. Such a sequence fills the cache as any other.
   */
  readonly hidden?: boolean;
  /**
   * Called with the logits (count, vocab) of prompt positions `from` to `from + count - 1`, all
   * but the last position's (which `next` gets), each position's once, as steps compute them:
   * position p's give the log-probability of prompt token p + 1. Such a sequence computes its
   * whole prompt, none of it taken from the prefix cache. Runs inside the step loop: it must
   * be quick; a throw ends the sequence with that error.
   */
  readonly promptLogits?: (logits: Float32Array, from: number, count: number) => void;
  /**
   * Guesses of the tokens that follow the one about to be fed, at most `most` (none: no
   * guess). A step feeds them after it; `next` then gets the logits after each guess as long
   * as it returns the guessed token, so every right guess is a token without a step of its
   * own, and a wrong one costs the step's work on the guesses after it. Called before each
   * decode step; must be quick and must not throw.
   */
  readonly draft?: (most: number) => readonly number[];
}

/** How a sequence ended. */
export interface SequenceOutcome {
  /** Prompt tokens whose KV came from the prefix cache (at admission). */
  readonly cachedTokens: number;
  /** Times it was paused to free blocks. */
  readonly preemptions: number;
  /** Guesses (`SequenceRequest.draft`) that `next` confirmed. */
  readonly acceptedGuesses: number;
  /** Guesses fed that `next` did not confirm (or fed after one it did not). */
  readonly rejectedGuesses: number;
}

/** A submitted sequence. */
export interface SequenceRun {
  /** Settles when the sequence ends: by `next` returning null, or rejected (abort, model error). */
  readonly done: Promise<SequenceOutcome>;
}

/** Thrown by `submit` when a request could never fit the KV pool. */
export class KvBudgetError extends RangeError {
  /** The error for a request of `positions` KV positions, over a pool of `capacity`. */
  constructor(positions: number, capacity: number) {
    super(
      `The request needs ${positions} KV positions, more than the ${capacity} the KV budget holds`,
    );
    this.name = "KvBudgetError";
  }
}

/** Options of a {@link BatchScheduler}. */
export interface SchedulerOptions {
  /** Requests that may wait for admission before `submit` throws `QueueFullError` (default 64). */
  readonly maxWaiting?: number;
  /** Sequences running at once (default 16). */
  readonly maxRunning?: number;
  /** Target duration of one step in milliseconds: sizes the prompt chunks (default 100). */
  readonly stepMs?: number;
  /** Fixed tokens per step instead of the adaptive budget. */
  readonly tokenBudget?: number;
  /** `Retry-After` of a `QueueFullError` (default 1). */
  readonly retryAfterSeconds?: number;
  /** Keep full blocks for later requests with the same prefix (default true). */
  readonly prefixCache?: boolean;
  /**
   * How the loop gives the event loop a turn during and between steps (default
   * {@link digestYield}; a server passes a `LoopbackYield`'s, see `io_turn.ts`).
   */
  readonly ioYield?: IoYield;
}

/** Figures of the scheduler, read by `/metrics`. */
export interface SchedulerStats {
  /** Sequences in the running set. */
  readonly running: number;
  /** Requests waiting for admission. */
  readonly waiting: number;
  /** Steps run so far. */
  readonly steps: number;
  /** Sequences in the last step. */
  readonly batchSize: number;
  /** Tokens in the last step. */
  readonly stepTokens: number;
  /** Blocks held by sequences. */
  readonly blocksUsed: number;
  /** Blocks free. */
  readonly blocksFree: number;
  /** Blocks kept by the prefix cache only. */
  readonly blocksCached: number;
  /** Bytes the pool's blocks take, used or free. */
  readonly poolBytes: number;
  /** Prompt tokens served from the prefix cache, in total. */
  readonly prefixHitTokens: number;
  /** Sequences paused for lack of blocks, in total. */
  readonly preemptions: number;
  /** Guessed tokens that sequences took, in total (`SequenceRequest.draft`). */
  readonly acceptedGuesses: number;
  /** Guessed tokens fed and not taken, in total. */
  readonly rejectedGuesses: number;
}

/** A running sequence as llama.cpp's `/slots` shows a slot's work. */
export interface SlotState {
  /** The place it holds, 0 to `maxRunning` - 1, kept while it runs. */
  readonly slot: number;
  /** The sequence's id, unique for the scheduler's life, in submission order. */
  readonly id: number;
  /** Prompt tokens. */
  readonly promptTokens: number;
  /** Positions in its cache. */
  readonly cachedPositions: number;
  /** Tokens sampled so far. */
  readonly generated: number;
  /** Most tokens it may sample. */
  readonly maxTokens: number;
}

interface Live<S> {
  readonly request: SequenceRequest;
  /** Submission order, for `slots`. */
  readonly id: number;
  /** The place it holds while running, -1 while it waits. */
  slot: number;
  seq: S | null;
  /** What its sequence's steps give: the request's kind, or "rows" while it guesses. */
  kind: SequenceKind;
  /** Tokens in the cache, in order (what a recompute feeds again). */
  readonly fed: number[];
  /** Tokens to feed next (the prompt's rest, or the last sampled token). */
  pending: number[];
  /** Prompt positions whose logits went to `promptLogits`. */
  promptRows: number;
  cachedTokens: number;
  preemptions: number;
  acceptedGuesses: number;
  rejectedGuesses: number;
  /** Admission order, for picking the youngest to pause. */
  order: number;
  settle: { resolve(o: SequenceOutcome): void; reject(e: unknown): void };
  cancelled: unknown;
}

const MIN_BUDGET = 16;
/**
 * Most prompt positions a sequence scoring its prompt runs in one step: their logits (rows x
 * vocab) are the step's largest values, 64 x 152k x 4 B = 39 MB for the largest vocabularies.
 */
const MAX_PROMPT_ROWS = 64;
/**
 * Most guesses a sequence feeds in one step. With its decode token, 8 rows: the fewest the
 * Q4_0 kernels run in tiles, which read each weight block once for all of them. (Fewer rows
 * cost about a decode step each, so they save nothing even when right.)
 */
const MAX_GUESSES = 7;
/**
 * How many times `stepMs` a step of prompt chunks alone may last: one that no sequence decodes
 * in keeps no one's next token waiting (new arrivals wait for it to end). Each step has costs
 * of its own: a 1000-token prompt of the 110M shape, alone, prefilled 1.07-1.09x (1 thread)
 * and 1.22x (2 threads) faster in steps of 400 ms than of 100 ms (in one step: 1.13-1.20x,
 * 1.29x).
 */
const ALONE_STEPS = 4;

/**
 * Runs submitted sequences in batched steps over one {@link StepModel}.
 *
 * @example
 * ```ts ignore
 * const model = await loadModel("stories260K.nnef.tgz");
 * const scheduler = modelScheduler(model, { maxRunning: 4 });
 * const tokens: number[] = [];
 * const run = scheduler.submit({
 *   prompt: [1, 403, 407],
 *   maxTokens: 8,
 *   next(logits) {
 *     if (tokens.length === 8) return null;
 *     tokens.push(logits.indexOf(Math.max(...logits)));
 *     return tokens.at(-1)!;
 *   },
 * });
 * await run.done;
 * ```
 */
export class BatchScheduler<S extends StepSequence> {
  /** The model it steps. */
  readonly model: StepModel<S>;
  /** The full blocks kept for later requests with the same prefix. */
  readonly prefixCache: PrefixCache;
  readonly #maxWaiting: number;
  readonly #maxRunning: number;
  readonly #stepMs: number;
  readonly #fixedBudget: number | undefined;
  readonly #retryAfter: number;
  readonly #keepPrefixes: boolean;
  readonly #ioYield: IoYield;
  /** When the event loop last had a turn (performance.now()). */
  #lastTurn = 0;
  readonly #waiting: Live<S>[] = [];
  readonly #running: Live<S>[] = [];
  /** Sequences to reuse, by kind. */
  readonly #free: Record<SequenceKind, S[]> = { logits: [], hidden: [], rows: [] };
  #order = 0;
  #submitted = 0;
  #looping = false;
  /**
   * Milliseconds per token of recent steps that the budget cut short (exponential average):
   * a step that feeds prompt chunks up to the budget. Decode steps, each token of which pays
   * for a read of every weight, would shrink the chunks far below `stepMs`.
   */
  #msPerToken = 1;
  #learned = 0;
  #steps = 0;
  #batchSize = 0;
  #stepTokens = 0;
  #prefixHitTokens = 0;
  #preemptions = 0;
  #acceptedGuesses = 0;
  #rejectedGuesses = 0;

  /** A scheduler over `model`, idle until the first `submit`. */
  constructor(model: StepModel<S>, options: SchedulerOptions = {}) {
    this.model = model;
    this.prefixCache = new PrefixCache(model.pool, model.pool.blockSize);
    this.#maxWaiting = options.maxWaiting ?? 64;
    this.#maxRunning = Math.max(1, options.maxRunning ?? 16);
    this.#stepMs = options.stepMs ?? 100;
    this.#fixedBudget = options.tokenBudget;
    this.#retryAfter = options.retryAfterSeconds ?? 1;
    this.#keepPrefixes = options.prefixCache ?? true;
    this.#ioYield = options.ioYield ?? digestYield;
  }

  /** Positions a sequence can hold (prompt and generated tokens). */
  get contextLength(): number {
    return this.model.contextLength;
  }

  /** Positions the pool could hold for one sequence alone. */
  get kvCapacity(): number {
    return this.model.pool.capacity * this.model.pool.blockSize;
  }

  /** Current figures. */
  get stats(): SchedulerStats {
    const pool = this.model.pool;
    return {
      running: this.#running.length,
      waiting: this.#waiting.length,
      steps: this.#steps,
      batchSize: this.#batchSize,
      stepTokens: this.#stepTokens,
      blocksUsed: pool.capacity - pool.freeBlocks,
      blocksFree: pool.freeBlocks,
      blocksCached: this.prefixCache.size,
      poolBytes: pool.capacity * pool.blockBytes,
      prefixHitTokens: this.#prefixHitTokens,
      preemptions: this.#preemptions,
      acceptedGuesses: this.#acceptedGuesses,
      rejectedGuesses: this.#rejectedGuesses,
    };
  }

  /** The running sequences, by slot. */
  get slots(): SlotState[] {
    return this.#running
      .map((live) => ({
        slot: live.slot,
        id: live.id,
        promptTokens: live.request.prompt.length,
        cachedPositions: live.fed.length,
        generated: live.fed.length + live.pending.length - live.request.prompt.length,
        maxTokens: live.request.maxTokens,
      }))
      .sort((a, b) => a.slot - b.slot);
  }

  /**
   * Queues a sequence; the step loop admits it when blocks allow.
   *
   * @throws {QueueFullError} when `maxWaiting` requests already wait
   * @throws {KvBudgetError} when prompt + maxTokens could never fit the pool
   * @throws {RangeError} for an empty prompt
   * @throws {TypeError} for a `hidden` request with `promptLogits`
   */
  submit(request: SequenceRequest): SequenceRun {
    if (request.prompt.length === 0) throw new RangeError("The prompt has no tokens");
    if (request.hidden && request.promptLogits) {
      throw new TypeError("A hidden sequence gives no prompt logits");
    }
    const positions = request.prompt.length + request.maxTokens;
    if (positions > this.kvCapacity) throw new KvBudgetError(positions, this.kvCapacity);
    if (this.#waiting.length >= this.#maxWaiting) {
      throw new QueueFullError(this.#maxWaiting, this.#retryAfter);
    }
    let settle!: Live<S>["settle"];
    const done = new Promise<SequenceOutcome>((resolve, reject) => (settle = { resolve, reject }));
    done.catch(() => {});
    const live: Live<S> = {
      request,
      id: ++this.#submitted,
      slot: -1,
      seq: null,
      kind: kindOf(request),
      fed: [],
      pending: [...request.prompt],
      promptRows: 0,
      cachedTokens: 0,
      preemptions: 0,
      acceptedGuesses: 0,
      rejectedGuesses: 0,
      order: 0,
      settle,
      cancelled: undefined,
    };
    const signal = request.signal;
    if (signal?.aborted) {
      settle.reject(signal.reason);
      return { done };
    }
    signal?.addEventListener("abort", () => {
      live.cancelled = signal.reason ?? new DOMException("Aborted", "AbortError");
      const at = this.#waiting.indexOf(live);
      if (at >= 0) {
        this.#waiting.splice(at, 1);
        settle.reject(live.cancelled);
      }
    }, { once: true });
    this.#waiting.push(live);
    this.#start();
    return { done };
  }

  #start(): void {
    if (this.#looping) return;
    this.#looping = true;
    this.#loop().catch((error) => {
      // A failed step fails the sequences it ran; the others go on in a new loop.
      for (const live of [...this.#running]) this.#end(live, error);
    }).finally(() => {
      this.#looping = false;
      if (this.#waiting.length > 0) this.#start();
    });
  }

  async #loop(): Promise<void> {
    while (this.#running.length > 0 || this.#waiting.length > 0) {
      this.#dropCancelled();
      this.#admit();
      const { work, cut } = this.#form();
      if (work.length === 0) {
        if (this.#running.length === 0 && this.#waiting.length > 0) {
          // Nothing runs and the first waiting sequence cannot get blocks: only the cache holds them.
          this.prefixCache.evict(Infinity);
          this.#admit();
          if (this.#running.length === 0) {
            const stuck = new RangeError("The KV pool cannot hold this sequence's prompt");
            this.#end(this.#waiting[0]!, stuck);
          }
        }
        await this.#nextTurn();
        continue;
      }
      const started = performance.now();
      const logits = await this.model.step(
        work.map((w) => ({ seq: w.live.seq!, ids: w.ids })),
        this.#ioTurn,
      );
      const tokens = work.reduce((n, w) => n + w.ids.length, 0);
      if (cut) this.#learn(performance.now() - started, tokens);
      this.#steps++;
      this.#batchSize = work.length;
      this.#stepTokens = tokens;
      work.forEach((w, i) => this.#advance(w.live, w.ids, logits[i]!));
      await this.#nextTurn();
    }
  }

  /**
   * A turn of the event loop that lets network I/O in (new connections, requests, `/health`),
   * once `IO_TURN_MS` of computation have passed since the last one; null before that.
   */
  readonly #ioTurn = (): Promise<void> | null => {
    if (performance.now() - this.#lastTurn < IO_TURN_MS) return null;
    return this.#ioYield().then(() => void (this.#lastTurn = performance.now()));
  };

  /** Lets the requests' generators, timers and I/O run between two steps. */
  #nextTurn(): Promise<void> {
    return this.#ioTurn() ?? new Promise((resolve) => setImmediate(resolve));
  }

  #learn(ms: number, tokens: number): void {
    const perToken = ms / Math.max(1, tokens);
    this.#msPerToken = this.#learned++ === 0 ? perToken : 0.8 * this.#msPerToken + 0.2 * perToken;
  }

  /**
   * Tokens a step may carry: about `stepMs` of work, or `ALONE_STEPS` times that when no
   * sequence decodes in it (no one waits for its next token).
   */
  #budget(decoding: boolean): number {
    if (this.#fixedBudget !== undefined) return this.#fixedBudget;
    const ms = decoding ? this.#stepMs : this.#stepMs * ALONE_STEPS;
    return Math.max(MIN_BUDGET, Math.floor(ms / Math.max(1e-3, this.#msPerToken)));
  }

  #dropCancelled(): void {
    for (const live of [...this.#running]) {
      if (live.cancelled !== undefined) this.#end(live, live.cancelled);
    }
  }

  /**
   * Admits waiting sequences in order while there are slots and blocks for their prompts. One
   * whose prompt starts with more full blocks than the cache holds, that a running sequence is
   * computing as part of its own prompt, waits for them (those behind it go on): computing them
   * twice in the same steps would cost as much as the first sequence's whole prefill.
   */
  #admit(): void {
    const pool = this.model.pool;
    let at = 0;
    while (at < this.#waiting.length && this.#running.length < this.#maxRunning) {
      const live = this.#waiting[at]!;
      const tokens = [...live.fed, ...live.pending];
      // Keep one token to compute: its logits are what the sequence needs next.
      const reusable = scoring(live) ? 0 : Math.floor((tokens.length - 1) / pool.blockSize);
      const cached = this.prefixCache.lookup(tokens, reusable);
      if (this.#prefilling(tokens, reusable) > cached.length) {
        at++;
        continue;
      }
      let seq: S;
      try {
        seq = live.seq ?? this.#freeOf(live).pop() ?? this.model.newSequence(live.kind);
      } catch (error) {
        // This model cannot run such a sequence: it ends, those behind it go on.
        this.#waiting.splice(at, 1);
        live.settle.reject(error);
        continue;
      }
      // Adopted first, so that the eviction below cannot take them.
      seq.adopt(cached);
      const needed = Math.ceil(tokens.length / pool.blockSize) - cached.length;
      if (needed > pool.freeBlocks) this.prefixCache.evict(needed - pool.freeBlocks);
      if (needed > pool.freeBlocks) {
        seq.reset();
        if (!live.seq) this.#freeOf(live).push(seq);
        return;
      }
      this.#waiting.splice(at, 1);
      const reused = cached.length * pool.blockSize;
      live.seq = seq;
      live.fed.length = 0;
      live.fed.push(...tokens.slice(0, reused));
      live.pending = tokens.slice(reused);
      if (live.preemptions === 0) {
        live.cachedTokens = reused;
        this.#prefixHitTokens += reused;
      }
      live.order = ++this.#order;
      live.slot = this.#freeSlot();
      this.#running.push(live);
    }
  }

  /** The lowest place no running sequence holds. */
  #freeSlot(): number {
    const held = new Set(this.#running.map((l) => l.slot));
    let slot = 0;
    while (held.has(slot)) slot++;
    return slot;
  }

  /**
   * How many of the first `limit` full blocks of `tokens` a running sequence will put in the
   * prefix cache when its prompt is in (see `#advance`).
   */
  #prefilling(tokens: readonly number[], limit: number): number {
    if (!this.#keepPrefixes) return 0;
    const B = this.model.pool.blockSize;
    let most = 0;
    for (const other of this.#running) {
      const prompt = other.request.prompt;
      if (other.fed.length >= prompt.length) continue;
      const end = Math.min(limit * B, prompt.length);
      let same = 0;
      while (same < end && prompt[same] === tokens[same]) same++;
      most = Math.max(most, Math.floor(same / B));
    }
    return most;
  }

  /**
   * The step's work: every decode, then prompt chunks within the budget; blocks reserved.
   * `cut`: the budget left prompt tokens for a later step.
   */
  #form(): { work: { live: Live<S>; ids: number[] }[]; cut: boolean } {
    const work: { live: Live<S>; ids: number[] }[] = [];
    const decoding = this.#running.filter((l) => l.pending.length === 1 && l.fed.length > 0);
    for (const live of decoding) {
      if (!this.#running.includes(live)) continue;
      const guesses = this.#guesses(live);
      // Guesses take free blocks only: they never pause another sequence.
      if (
        guesses.length > 0 && live.seq!.reserve(live.fed.length + 1 + guesses.length) &&
        this.#switchKind(live, "rows")
      ) {
        work.push({ live, ids: [...live.pending, ...guesses] });
      } else if (this.#reserve(live, live.fed.length + 1)) {
        this.#switchKind(live, kindOf(live.request));
        work.push({ live, ids: live.pending.slice() });
      }
    }
    let budget = this.#budget(work.length > 0) - work.length;
    let cut = false;
    for (const live of this.#running.filter((l) => !decoding.includes(l))) {
      if (budget <= 0 && work.length > 0) {
        cut = true;
        break;
      }
      if (!this.#running.includes(live)) continue;
      let take = Math.min(live.pending.length, Math.max(1, budget));
      if (scoring(live)) take = Math.min(take, MAX_PROMPT_ROWS);
      if (!this.#reserve(live, live.fed.length + take)) continue;
      work.push({ live, ids: live.pending.slice(0, take) });
      budget -= take;
      if (take < live.pending.length) cut = true;
    }
    // A pause while reserving may have taken out sequences already given work.
    return { work: work.filter((w) => this.#running.includes(w.live)), cut };
  }

  /**
   * The guesses `live` feeds after its decode token this step: within its token allowance (the
   * last token it may make is never fed) and the guesses' limit.
   */
  #guesses(live: Live<S>): readonly number[] {
    const { draft, prompt, maxTokens } = live.request;
    if (!draft) return [];
    const most = Math.min(MAX_GUESSES, prompt.length + maxTokens - live.fed.length - 2);
    if (most <= 0) return [];
    const guesses = draft(most);
    return guesses.length > most ? guesses.slice(0, most) : guesses;
  }

  /**
   * Moves `live` to a sequence of `kind` that adopts its blocks and positions (no copy: the
   * same blocks, referenced by the new sequence before the old one lets them go); false when
   * the model cannot make such a sequence.
   */
  #switchKind(live: Live<S>, kind: SequenceKind): boolean {
    if (live.kind === kind) return true;
    let seq: S | undefined = this.#free[kind].pop();
    try {
      seq ??= this.model.newSequence(kind);
    } catch {
      return false;
    }
    const old = live.seq!;
    seq.adopt(old.blocks, old.position);
    old.reset();
    this.#free[live.kind].push(old);
    live.seq = seq;
    live.kind = kind;
    return true;
  }

  /** Blocks for `positions` of `live`, evicting cached blocks, then pausing the youngest others. */
  #reserve(live: Live<S>, positions: number): boolean {
    const seq = live.seq!;
    if (seq.reserve(positions)) return true;
    const pool = this.model.pool;
    const needed = Math.ceil(positions / pool.blockSize) - seq.blocks.length;
    this.prefixCache.evict(needed - pool.freeBlocks);
    while (!seq.reserve(positions)) {
      const youngest = this.#running
        .filter((l) => l !== live)
        .reduce<Live<S> | null>((y, l) => (y === null || l.order > y.order ? l : y), null);
      if (youngest === null) return false;
      this.#pause(youngest);
      this.prefixCache.evict(needed - pool.freeBlocks);
    }
    return true;
  }

  /** Frees a running sequence's blocks; it waits at the front to recompute its tokens. */
  #pause(live: Live<S>): void {
    this.#running.splice(this.#running.indexOf(live), 1);
    live.slot = -1;
    if (this.#keepPrefixes) this.prefixCache.insert(live.fed, live.seq!.blocks);
    live.pending = [...live.fed, ...live.pending];
    live.fed.length = 0;
    live.seq!.reset();
    if (live.kind !== kindOf(live.request)) {
      // It recomputes as it began, and guesses again once decoding.
      this.#free[live.kind].push(live.seq!);
      live.seq = null;
      live.kind = kindOf(live.request);
    }
    live.preemptions++;
    this.#preemptions++;
    this.#waiting.unshift(live);
  }

  #advance(live: Live<S>, ids: readonly number[], logits: Float32Array): void {
    if (live.pending.length === 1 && ids.length > 1) return this.#verify(live, ids, logits);
    const prompt = live.request.prompt.length;
    const before = live.fed.length;
    live.fed.push(...ids);
    live.pending = live.pending.slice(ids.length);
    // A prompt's full blocks are shared as soon as they are computed, not when their sequence
    // ends: a request with the same prefix arriving meanwhile (another choice of the same
    // request, a shared system prompt) computes only what follows it.
    if (this.#keepPrefixes && before < prompt && live.fed.length >= prompt) {
      this.prefixCache.insert(live.fed, live.seq!.blocks);
    }
    let last = logits;
    let next: number | null;
    try {
      if (live.request.promptLogits) {
        last = this.#deliverRows(live, before, ids.length, logits);
      }
      if (live.pending.length > 0) return;
      if (live.cancelled !== undefined) return this.#end(live, live.cancelled);
      next = live.request.next(last);
    } catch (error) {
      return this.#end(live, error);
    }
    if (next === null) return this.#end(live, null);
    live.pending = [next];
  }

  /**
   * A decode token and its guesses, `ids`, ran with the logits (ids, vocab) of each position:
   * `next` takes them in order as long as it returns the guess that follows; the positions
   * after the last one it confirmed are forgotten.
   */
  #verify(live: Live<S>, ids: readonly number[], logits: Float32Array): void {
    const vocab = logits.length / ids.length;
    let kept = 1;
    let next: number | null;
    try {
      while (true) {
        if (live.cancelled !== undefined) return this.#end(live, live.cancelled);
        next = live.request.next(logits.subarray((kept - 1) * vocab, kept * vocab));
        if (next === null || kept === ids.length || next !== ids[kept]) break;
        kept++;
      }
    } catch (error) {
      return this.#end(live, error);
    }
    live.fed.push(...ids.slice(0, kept));
    live.seq!.truncate(live.fed.length);
    live.acceptedGuesses += kept - 1;
    live.rejectedGuesses += ids.length - kept;
    this.#acceptedGuesses += kept - 1;
    this.#rejectedGuesses += ids.length - kept;
    if (next === null) return this.#end(live, null);
    live.pending = [next];
  }

  /**
   * Gives `promptLogits` the rows of `logits` (count, vocab) of prompt positions it has not had,
   * positions `from` on; returns the last row.
   */
  #deliverRows(live: Live<S>, from: number, count: number, logits: Float32Array): Float32Array {
    const vocab = logits.length / count;
    const end = Math.min(from + count, rowsWanted(live.request));
    if (end > live.promptRows) {
      const start = Math.max(from, live.promptRows);
      live.promptRows = end;
      live.request.promptLogits!(
        logits.subarray((start - from) * vocab, (end - from) * vocab),
        start,
        end - start,
      );
    }
    return logits.subarray((count - 1) * vocab);
  }

  #freeOf(live: Live<S>): S[] {
    return this.#free[live.kind];
  }

  /** Ends a sequence: its full blocks go to the prefix cache, the rest back to the pool. */
  #end(live: Live<S>, error: unknown): void {
    const at = this.#running.indexOf(live);
    if (at >= 0) this.#running.splice(at, 1);
    const w = this.#waiting.indexOf(live);
    if (w >= 0) this.#waiting.splice(w, 1);
    if (live.seq) {
      if (error === null && this.#keepPrefixes) this.prefixCache.insert(live.fed, live.seq.blocks);
      live.seq.reset();
      this.#freeOf(live).push(live.seq);
      live.seq = null;
    }
    if (error === null) {
      live.settle.resolve({
        cachedTokens: live.cachedTokens,
        preemptions: live.preemptions,
        acceptedGuesses: live.acceptedGuesses,
        rejectedGuesses: live.rejectedGuesses,
      });
    } else live.settle.reject(error);
  }
}

function kindOf(request: SequenceRequest): SequenceKind {
  return request.hidden ? "hidden" : request.promptLogits ? "rows" : "logits";
}

/** True while `live` has prompt positions whose logits its request still waits for. */
function scoring(live: Live<unknown>): boolean {
  return live.promptRows < rowsWanted(live.request);
}

/** Prompt positions whose logits `request` asks for: all but the last. */
function rowsWanted(request: SequenceRequest): number {
  return request.promptLogits ? request.prompt.length - 1 : 0;
}

/** Compute time after which the event loop gets a turn for network I/O. */
const IO_TURN_MS = 5;
