import { setImmediate } from "node:timers";
import type { ChatMessage } from "./chat_template.ts";
import { IncrementalDetokenizer } from "./detokenizer.ts";
import { Sampler, type SamplingOptions, type TokenLogprob, tokenLogprob } from "./sampler.ts";
import { StopMatcher } from "./stop.ts";
import type { Tokenizer } from "./tokenizer.ts";
import { sha256Hex } from "../storage/sha256.ts";

/** One sequence on the model: its KV cache grows with every call. */
export interface TokenSession {
  /** Appends `ids` to the sequence; returns the logits (vocab,) of its last position. */
  prefill(ids: readonly number[]): Promise<Float32Array>;
  /** Appends one token; returns the logits (vocab,) of the next position. */
  decode(id: number): Promise<Float32Array>;
  /** Frees the sequence's cache. */
  dispose?(): void;
}

/** The part of a loaded model that generation needs. */
export interface TokenModel {
  /**
   * Tokens one sequence can hold, prompt plus completion: the positions the model can run,
   * plus one for the last generated token, which is sampled but never run.
   */
  readonly contextLength: number;
  /** Starts a sequence with an empty cache. */
  newSession(): TokenSession;
}

/** How to generate one completion. */
export interface GenerateOptions {
  readonly sampling: SamplingOptions;
  /** Stop strings, matched on decoded text and never emitted. */
  readonly stop: readonly string[];
  /** Most tokens to generate; generation also ends at the context length. */
  readonly maxTokens: number;
  /** Aborting it stops generation within one token step (or one prefill chunk). */
  readonly signal?: AbortSignal;
  /** Called when the first token has been sampled (its text may still be held back). */
  readonly onFirstToken?: () => void;
  /**
   * Report each generated token's log-probability with this many most likely alternatives
   * (0 to 20); unset reports none.
   */
  readonly logprobs?: number;
}

/** Why generation ended, in OpenAI terms. */
export type FinishReason = "stop" | "length";

/**
 * What `InferenceService.generate` yields. With `logprobs` asked for, each event carries the
 * log-probabilities of the tokens generated since the previous one (those of a stop string's
 * tokens too, though their text is not sent), so that they add up to `completionTokens`.
 */
export type GenerationEvent =
  | {
    readonly type: "text";
    readonly text: string;
    readonly logprobs?: readonly TokenLogprob[];
  }
  | {
    readonly type: "done";
    readonly finishReason: FinishReason;
    readonly promptTokens: number;
    readonly completionTokens: number;
    /** The generated ids, eos excluded. */
    readonly ids: readonly number[];
    readonly logprobs?: readonly TokenLogprob[];
  };

/** Everything the service is built from. */
export interface InferenceServiceOptions {
  readonly model: TokenModel;
  readonly tokenizer: Tokenizer;
  /** The name clients use in `model` and see in `/v1/models`. */
  readonly modelId: string;
  /** Renders chat messages to prompt text (the model's chat template). */
  readonly renderChat: (messages: readonly ChatMessage[]) => string;
  /**
   * Prompt tokens per prefill call. Unset, the size adapts so that each call takes about
   * `prefillBudgetMs`, so a long prompt never blocks the event loop for long.
   */
  readonly prefillChunk?: number;
  /** Target duration of one prefill call when `prefillChunk` is unset (default 50 ms). */
  readonly prefillBudgetMs?: number;
  /**
   * Names the backend configuration (OpenAI's `system_fingerprint`): the same value means the
   * same model, runtime and kernels, so the same seed gives the same tokens. Default: derived
   * from `modelId` alone.
   */
  readonly systemFingerprint?: string;
}

/** Ties a model, its tokenizer, its chat template and the sampler into text generation. */
export class InferenceService {
  readonly #model: TokenModel;
  readonly #tokenizer: Tokenizer;
  readonly #renderChat: (messages: readonly ChatMessage[]) => string;
  readonly #prefillChunk: number | undefined;
  readonly #prefillBudgetMs: number;
  readonly modelId: string;
  readonly systemFingerprint: string;

  constructor(options: InferenceServiceOptions) {
    this.#model = options.model;
    this.#tokenizer = options.tokenizer;
    this.#renderChat = options.renderChat;
    this.#prefillChunk = options.prefillChunk === undefined
      ? undefined
      : Math.max(1, Math.floor(options.prefillChunk));
    this.#prefillBudgetMs = options.prefillBudgetMs ?? 50;
    this.modelId = options.modelId;
    this.systemFingerprint = options.systemFingerprint ?? systemFingerprint([options.modelId]);
  }

  /** Positions the model can hold. */
  get contextLength(): number {
    return this.#model.contextLength;
  }

  /** The tokenizer in use. */
  get tokenizer(): Tokenizer {
    return this.#tokenizer;
  }

  /** Chat messages as prompt text. */
  renderChat(messages: readonly ChatMessage[]): string {
    return this.#renderChat(messages);
  }

  /**
   * Prompt text as ids, with BOS by the tokenizer's convention but never twice (a
   * template may already start with the BOS text).
   */
  encodePrompt(text: string): number[] {
    const ids = this.#tokenizer.encode(text);
    const bos = this.#tokenizer.bos;
    if (bos !== null && ids[0] === bos && ids[1] === bos) ids.shift();
    return ids;
  }

  /**
   * Generates from `promptIds`: prefill in chunks, then one token per step, yielding
   * text that is safe to send (whole characters, stop strings cut) and a final "done".
   * Throws the signal's reason when aborted.
   */
  async *generate(
    promptIds: readonly number[],
    options: GenerateOptions,
  ): AsyncGenerator<GenerationEvent> {
    const { signal } = options;
    if (promptIds.length === 0) throw new RangeError("Prompt has no tokens");
    if (promptIds.length >= this.#model.contextLength) {
      throw new RangeError(
        `Prompt of ${promptIds.length} tokens does not fit the context of ${this.#model.contextLength}`,
      );
    }
    const session = this.#model.newSession();
    try {
      let logits: Float32Array | undefined; // (vocab,)
      let chunk = this.#prefillChunk ?? FIRST_PREFILL_CHUNK;
      for (let at = 0; at < promptIds.length;) {
        signal?.throwIfAborted();
        const ids = promptIds.slice(at, at + chunk);
        const started = performance.now();
        logits = await session.prefill(ids);
        at += ids.length;
        if (this.#prefillChunk === undefined) {
          const perToken = Math.max(1e-3, (performance.now() - started) / ids.length);
          chunk = Math.max(
            1,
            Math.min(MAX_PREFILL_CHUNK, Math.floor(this.#prefillBudgetMs / perToken)),
          );
        }
        await nextTurn();
      }
      const sampler = new Sampler(options.sampling);
      const detokenizer = new IncrementalDetokenizer(this.#tokenizer, promptIds);
      const stop = new StopMatcher(options.stop);
      const eos = new Set(this.#tokenizer.eos);
      const room = this.#model.contextLength - promptIds.length;
      const limit = Math.min(options.maxTokens, room);
      const generated: number[] = [];
      const logprobs = options.logprobs === undefined ? null : new LogprobsQueue();
      let finishReason: FinishReason = "length";
      while (generated.length < limit) {
        signal?.throwIfAborted();
        const id = sampler.sample(logits!, generated);
        if (eos.has(id)) {
          finishReason = "stop";
          break;
        }
        generated.push(id);
        if (generated.length === 1) options.onFirstToken?.();
        logprobs?.add(tokenLogprob(logits!, id, options.logprobs!));
        const text = stop.push(detokenizer.push(id));
        if (text !== "") yield { type: "text", text, ...logprobs?.take() };
        if (stop.stopped) {
          finishReason = "stop";
          break;
        }
        if (generated.length >= limit) break;
        logits = await session.decode(id);
        await nextTurn();
      }
      if (!stop.stopped) {
        let rest = stop.push(detokenizer.flush());
        if (stop.stopped) finishReason = "stop";
        else rest += stop.flush();
        if (rest !== "") yield { type: "text", text: rest, ...logprobs?.take() };
      }
      yield {
        type: "done",
        finishReason,
        promptTokens: promptIds.length,
        completionTokens: generated.length,
        ids: generated,
        ...logprobs?.take(),
      };
    } finally {
      session.dispose?.();
    }
  }
}

/** A `system_fingerprint` (`fp_` and 12 hex digits) naming what `parts` describe. */
export function systemFingerprint(parts: readonly string[]): string {
  return `fp_${sha256Hex(parts.join("\n")).slice(0, 12)}`;
}

/** Log-probabilities of tokens generated but not yet reported. */
class LogprobsQueue {
  #pending: TokenLogprob[] = [];

  add(entry: TokenLogprob): void {
    this.#pending.push(entry);
  }

  /** The pending entries as an event's `logprobs` field; none pending is an empty list. */
  take(): { logprobs: TokenLogprob[] } {
    const logprobs = this.#pending;
    this.#pending = [];
    return { logprobs };
  }
}

const FIRST_PREFILL_CHUNK = 8;
const MAX_PREFILL_CHUNK = 512;

/** Compute time after which a step yields with a timer, which lets network I/O in. */
const IO_TURN_MS = 50;
let lastIoTurn = 0;

/**
 * Lets timers, I/O and abort events run between two compute steps. `setImmediate` is cheap,
 * but while steps keep coming it lets no new request in (a `/ready` probe would wait for the
 * whole generation); `setTimeout(0)`, which Deno clamps to milliseconds once nested, does. So
 * a step yields with a timer once `IO_TURN_MS` have passed since the last such turn.
 */
function nextTurn(): Promise<void> {
  const now = performance.now();
  if (now - lastIoTurn < IO_TURN_MS) return new Promise((resolve) => setImmediate(resolve));
  lastIoTurn = now;
  return new Promise((resolve) => setTimeout(resolve, 0));
}
