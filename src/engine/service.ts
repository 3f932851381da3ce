import { alternatingTurns, type ChatMessage, PLAIN_CHAT_TEMPLATE } from "./chat_template.ts";
import { breakerTokens } from "./dry.ts";
import { type TokenConstraint, VocabGrammar } from "./constrain/constraint.ts";
import type { Grammar } from "./constrain/grammar.ts";
import { vocabTrie } from "./constrain/vocab_trie.ts";
import { ByteDetokenizer, IncrementalDetokenizer } from "./detokenizer.ts";
import {
  Sampler,
  type SamplingOptions,
  type TokenLogprob,
  tokenLogprob,
  type Weigh,
} from "./sampler.ts";
import { StopMatcher } from "./stop.ts";
import { IndentStop } from "./indent_stop.ts";
import { PredictionDraft } from "./prediction_draft.ts";
import { reasoningParser, type ReasoningPiece, type ReasoningStart } from "./reasoning.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import {
  CALL_MARKERS,
  toolConversation,
  type ToolFamily,
  toolFamily,
  type ToolFunction,
} from "./tool_calls.ts";
import { withVisibleTokens } from "../tokenizer/visible_tokens.ts";
import type {
  SchedulerStats,
  SequenceRequest,
  SequenceRun,
  SlotState,
} from "../scheduler/step_loop.ts";
import { sha256Hex } from "../storage/sha256.ts";

/**
 * The part of a loaded model that generation needs: the scheduler that runs sequences over it
 * (a `BatchScheduler`).
 */
export interface TokenModel {
  /**
   * Tokens one sequence can hold, prompt plus completion: the positions the model can run,
   * plus one for the last generated token, which is sampled but never run.
   */
  readonly contextLength: number;
  /** Positions the KV budget holds for one sequence. */
  readonly kvCapacity: number;
  /** Runs a sequence; see `SequenceRequest`. */
  submit(request: SequenceRequest): SequenceRun;
  /** The scheduler's figures, for `/metrics`. */
  readonly stats?: SchedulerStats;
  /** The running sequences, for `/slots`. */
  readonly slots?: readonly SlotState[];
}

/** How to generate one completion. */
export interface GenerateOptions {
  /** Temperature, top-p, penalties and the seed. */
  readonly sampling: SamplingOptions;
  /** Stop strings, matched on decoded text and never emitted. */
  readonly stop: readonly string[];
  /** Token ids that end generation as the end-of-sequence token does (never emitted). */
  readonly stopTokenIds?: readonly number[];
  /** The end-of-sequence token ends nothing: it is generated as any other token. */
  readonly ignoreEos?: boolean;
  /** No ending token (end of sequence, `stopTokenIds`) may be sampled before this many tokens. */
  readonly minTokens?: number;
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
  /**
   * Report the log-probability of each prompt token after the first, with this many most
   * likely alternatives (0 to 20), in a "prompt" event before any text; unset reports none.
   * The prompt is then computed whole, none of it taken from the prefix cache.
   */
  readonly promptLogprobs?: number;
  /**
   * How a thinking model's answer begins: its reasoning block comes apart from the answer (the
   * `reasoning` of "text" events), its tokens counted (`reasoningTokens` of the "done" event).
   */
  readonly reasoning?: ReasoningStart;
  /**
   * Most tokens of a thinking model's reasoning block (with `reasoning`): once the block holds
   * this many, the tokens of its closing marker are written in place of sampled ones, and the
   * answer follows.
   */
  readonly reasoningBudget?: number;
  /**
   * Limits the tokens that may be sampled (structured output) and ends generation once its
   * document is whole; the text is then the UTF-8 of the tokens' bytes, exactly what it checked.
   */
  readonly constraint?: TokenConstraint;
  /**
   * Code completion: after the first line, a line indented by fewer spaces or tabs than this
   * ends generation after its indentation (finish reason "length"); see `IndentStop`.
   */
  readonly minIndent?: number;
  /**
   * Once this many milliseconds have passed since the first token, the next token that writes a
   * newline is the last (finish reason "length").
   */
  readonly timeLimitMs?: number;
  /**
   * The text the answer is expected to repeat for the most part (OpenAI's predicted outputs):
   * its tokens are fed as guesses, and every one the sampling confirms is a token without a
   * step of its own. The answer is the same with or without it. A model that gives no
   * prompt's scores (`scoresPrompts` false) makes no guesses.
   */
  readonly prediction?: string;
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
    /** The prompt's tokens after the first, each with its log-probability (`promptLogprobs`). */
    readonly type: "prompt";
    readonly logprobs: readonly TokenLogprob[];
  }
  | {
    readonly type: "text";
    /** Text of the answer ("" when the event carries reasoning alone). */
    readonly text: string;
    /** Text of a thinking model's reasoning block (with `GenerateOptions.reasoning`). */
    readonly reasoning?: string;
    readonly logprobs?: readonly TokenLogprob[];
  }
  | {
    readonly type: "done";
    readonly finishReason: FinishReason;
    readonly promptTokens: number;
    readonly completionTokens: number;
    /** The generated ids, eos excluded. */
    readonly ids: readonly number[];
    /** Prompt tokens whose KV came from the prefix cache. */
    readonly cachedTokens: number;
    /** Of the completion's tokens, those of a thinking model's reasoning block. */
    readonly reasoningTokens: number;
    /** Tokens of the prediction that the answer took, each without a step of its own. */
    readonly acceptedPredictionTokens: number;
    /** Tokens of the prediction fed as guesses that the answer did not take. */
    readonly rejectedPredictionTokens: number;
    /** The stop string that ended the generation; null when none did. */
    readonly stopString: string | null;
    readonly logprobs?: readonly TokenLogprob[];
  };

/** Everything the service is built from. */
export interface InferenceServiceOptions {
  /** The model that turns tokens into logits (a `BatchScheduler` over sessions). */
  readonly model: TokenModel;
  /** The tokenizer of the model. */
  readonly tokenizer: Tokenizer;
  /** The name clients use in `model` and see in `/v1/models`. */
  readonly modelId: string;
  /**
   * Renders chat messages to prompt text (the model's chat template), with extra variables,
   * ending with the assistant turn's opening unless `addGenerationPrompt` is false.
   */
  readonly renderChat: (
    messages: readonly ChatMessage[],
    variables?: Readonly<Record<string, unknown>>,
    addGenerationPrompt?: boolean,
  ) => string;
  /**
   * The size of the hidden state `embed` gives, or 0 when the model gives none (default 0).
   */
  readonly embeddingSize?: number;
  /** The model gives each prompt position's logits, so `promptLogprobs` (default false). */
  readonly scoresPrompts?: boolean;
  /** The chat template's text, which tells how tools are written (default: the plain one). */
  readonly chatTemplate?: string;
  /**
   * Names the backend configuration (OpenAI's `system_fingerprint`): the same value means the
   * same model, runtime and kernels, so the same seed gives the same tokens. Default: derived
   * from `modelId` alone.
   */
  readonly systemFingerprint?: string;
  /** How samplers weigh the whole vocabulary (default: in TypeScript; see `kernelWeigh`). */
  readonly weigh?: Weigh;
  /** Bytes of the model's weights as stored (what model lists show as its size; default 0). */
  readonly weightBytes?: number;
}

/** How `InferenceService.renderChat` renders, besides the messages and tools. */
export interface ChatRenderOptions {
  /** The template's other inputs (`enable_thinking`, ...). */
  readonly variables?: Readonly<Record<string, unknown>>;
  /**
   * End the prompt inside the final message (an assistant's), right after its text, so that
   * the answer continues it instead of opening a new turn.
   */
  readonly continueFinal?: boolean;
}

/**
 * `text` (a conversation rendered without the assistant's opening) cut right after the last
 * place it writes `final`, the final message's text (trimmed, if the template trims it).
 */
function upToFinal(text: string, final: string): string {
  for (const piece of [final, final.trim()]) {
    const at = piece === "" ? -1 : text.lastIndexOf(piece);
    if (at >= 0) return text.slice(0, at + piece.length);
  }
  throw new Error("it does not write the final message's text, so the answer cannot continue it");
}

/**
 * Ties a model, its tokenizer, its chat template and the sampler into text generation.
 *
 * @example
 * ```ts ignore
 * const service = new InferenceService({
 *   model: modelScheduler(await loadModel("model.nnef.tar")),
 *   tokenizer: await loadTokenizer("tokenizer.json"),
 *   modelId: "stories",
 *   renderChat: (messages) => renderChatTemplate({}, messages),
 * });
 * ```
 */
export class InferenceService {
  readonly #model: TokenModel;
  readonly #tokenizer: Tokenizer;
  readonly #renderChat: InferenceServiceOptions["renderChat"];
  readonly #grammars = new Map<string, VocabGrammar>();
  readonly #weigh: Weigh | undefined;
  /** The chat template's text. */
  readonly chatTemplate: string;
  /** How this model writes tool calls (told from its chat template). */
  readonly toolFamily: ToolFamily;
  /** The name clients use in `model` and see in `/v1/models`. */
  readonly modelId: string;
  /** OpenAI's `system_fingerprint` of this model, runtime and kernels. */
  readonly systemFingerprint: string;
  /** Bytes of the vocabulary's longest token (computed on first use). */
  #longestToken = 0;

  /** A service over `options.model` and its tokenizer. */
  constructor(options: InferenceServiceOptions) {
    this.#model = options.model;
    this.#weigh = options.weigh;
    this.#renderChat = options.renderChat;
    this.chatTemplate = options.chatTemplate ?? PLAIN_CHAT_TEMPLATE;
    this.toolFamily = toolFamily(this.chatTemplate);
    // The special tokens this model writes tool calls with are read as text.
    this.#tokenizer = withVisibleTokens(options.tokenizer, CALL_MARKERS[this.toolFamily]);
    this.modelId = options.modelId;
    this.systemFingerprint = options.systemFingerprint ?? systemFingerprint([options.modelId]);
    this.embeddingSize = options.embeddingSize ?? 0;
    this.scoresPrompts = options.scoresPrompts ?? false;
    this.weightBytes = options.weightBytes ?? 0;
  }

  /** Bytes of the model's weights as stored; 0 when not told. */
  readonly weightBytes: number;

  /** Whether `generate` can score its prompt (`promptLogprobs`). */
  readonly scoresPrompts: boolean;

  /** The size of `embed`'s vectors; 0 when the model gives none. */
  readonly embeddingSize: number;

  /**
   * The hidden state (embeddingSize,) of the last position of `promptIds` (the input of the
   * model's classifier, after the final norm), computed in the scheduler's steps beside the
   * other sequences.
   *
   * @throws {TypeError} when the model gives no embeddings (`embeddingSize` 0)
   * @throws {RangeError} for an empty prompt or one over the context
   */
  async embed(promptIds: readonly number[], signal?: AbortSignal): Promise<Float32Array> {
    if (this.embeddingSize === 0) throw new TypeError("This model gives no embeddings");
    this.#checkPrompt(promptIds);
    let vector: Float32Array | null = null;
    const run = this.#model.submit({
      prompt: promptIds,
      maxTokens: 0,
      hidden: true,
      next: (hidden) => {
        vector = hidden; // the step's own array: nothing else reads it
        return null;
      },
      ...(signal ? { signal } : {}),
    });
    await run.done;
    return vector!;
  }

  /**
   * The logits of tokens `ids` at the position after `promptIds` (what the model would say
   * next), computed in the scheduler's steps beside the other sequences; the prompt's full
   * blocks stay in the prefix cache as any other's.
   *
   * @throws {RangeError} for an empty prompt or one over the context
   */
  async nextLogits(
    promptIds: readonly number[],
    ids: readonly number[],
    signal?: AbortSignal,
  ): Promise<number[]> {
    this.#checkPrompt(promptIds);
    let picked: number[] = [];
    const run = this.#model.submit({
      prompt: promptIds,
      maxTokens: 0,
      next: (logits) => {
        picked = ids.map((id) => logits[id]!);
        return null;
      },
      ...(signal ? { signal } : {}),
    });
    await run.done;
    return picked;
  }

  /** @throws {RangeError} for an empty prompt or one over the context */
  #checkPrompt(promptIds: readonly number[]): void {
    if (promptIds.length === 0) throw new RangeError("Prompt has no tokens");
    if (promptIds.length >= this.#model.contextLength) {
      throw new RangeError(
        `Prompt of ${promptIds.length} tokens does not fit the context of ${this.#model.contextLength}`,
      );
    }
  }

  /** Positions the model can hold. */
  get contextLength(): number {
    return this.#model.contextLength;
  }

  /** The scheduler's figures (running and waiting sequences, KV blocks, prefix hits). */
  get stats(): SchedulerStats | undefined {
    return this.#model.stats;
  }

  /** The running sequences, by slot (none for a model that runs without a scheduler). */
  get slots(): readonly SlotState[] {
    return this.#model.slots ?? [];
  }

  /**
   * A lower bound of the tokens `text` encodes to (its length over the longest token's bytes),
   * cheap, so that a text far over the context is refused without tokenizing it.
   */
  leastTokens(text: string): number {
    if (this.#longestToken === 0) {
      for (let id = 0; id < this.#tokenizer.vocabSize; id++) {
        this.#longestToken = Math.max(this.#longestToken, this.#tokenizer.tokenBytes(id).length);
      }
      this.#longestToken ||= 1;
    }
    // Every UTF-16 unit takes at least one UTF-8 byte.
    return Math.ceil(text.length / this.#longestToken);
  }

  /** Positions the KV budget holds for one sequence (a request needing more is refused). */
  get kvCapacity(): number {
    return this.#model.kvCapacity;
  }

  /** The tokenizer in use. */
  get tokenizer(): Tokenizer {
    return this.#tokenizer;
  }

  /**
   * Chat messages as prompt text; with `tools`, described to the model as its template does.
   *
   * @throws {Error} with `continueFinal` when the template does not write the final
   *   message's text as given (then there is no place to continue it from)
   */
  renderChat(
    messages: readonly ChatMessage[],
    tools: readonly ToolFunction[] = [],
    options: ChatRenderOptions = {},
  ): string {
    const { variables = {}, continueFinal = false } = options;
    const plain = tools.length === 0 && !messages.some((m) => m.role === "tool" || m.tool_calls);
    const prepared = plain
      ? { messages, variables }
      : toolConversation(this.chatTemplate, messages, tools);
    const render = (turns: readonly ChatMessage[]) =>
      this.#renderChat(turns, { ...variables, ...prepared.variables }, !continueFinal);
    let text: string;
    try {
      text = render(prepared.messages);
    } catch (error) {
      // A template that insists on alternating turns gets them; any other failure stands.
      const turns = alternatingTurns(prepared.messages);
      const same = turns.length === prepared.messages.length &&
        turns.every((t, i) => t.role === prepared.messages[i]!.role);
      if (same) throw error;
      try {
        text = render(turns);
      } catch {
        throw error;
      }
    }
    return continueFinal ? upToFinal(text, messages.at(-1)?.content ?? "") : text;
  }

  /**
   * A grammar matched against this model's vocabulary, kept by `key` (the few most recent) so
   * that requests with the same schema share its states and masks; `compile` runs on a miss.
   */
  vocabGrammar(key: string, compile: () => Grammar): VocabGrammar {
    let grammar = this.#grammars.get(key);
    // A grammar's states only grow; past a bound it starts afresh.
    if (grammar !== undefined && grammar.automaton.stateCount > MAX_GRAMMAR_STATES) {
      this.#grammars.delete(key);
      grammar = undefined;
    }
    if (grammar === undefined) {
      grammar = new VocabGrammar(compile(), vocabTrie(this.#tokenizer), this.#tokenizer.eos);
      this.#grammars.set(key, grammar);
      if (this.#grammars.size > GRAMMAR_CACHE) {
        this.#grammars.delete(this.#grammars.keys().next().value!);
      }
    } else {
      this.#grammars.delete(key);
      this.#grammars.set(key, grammar);
    }
    return grammar;
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
   * The ids of a predicted output, read no further than `limit` tokens could reach: a text
   * longer than the answer can be guesses nothing more.
   */
  #predictionTokens(text: string, limit: number): number[] {
    const reach = Math.max(0, limit) * CHARS_PER_TOKEN;
    const ids = this.#tokenizer.encode(text.slice(0, reach), { addBos: false });
    return ids.slice(0, Math.max(0, limit));
  }

  /**
   * Generates from `promptIds`: the scheduler prefills it (in chunks, batched with other
   * sequences) and decodes one token per step; yields text that is safe to send (whole
   * characters, stop strings cut) and a final "done". Throws the signal's reason when aborted.
   *
   * @throws {TypeError} for `promptLogprobs` when the model does not score prompts
   */
  async *generate(
    promptIds: readonly number[],
    options: GenerateOptions,
  ): AsyncGenerator<GenerationEvent> {
    this.#checkPrompt(promptIds);
    if (options.promptLogprobs !== undefined && !this.scoresPrompts) {
      throw new TypeError("This model gives no log-probabilities of a prompt's tokens");
    }
    const { dry } = options.sampling;
    const sampler = new Sampler(options.sampling, {
      prompt: promptIds,
      ...(this.#weigh ? { weigh: this.#weigh } : {}),
      ...(dry ? { breakers: breakerTokens(this.#tokenizer, dry.sequenceBreakers) } : {}),
    });
    const { constraint } = options;
    const detokenizer = constraint
      ? new ByteDetokenizer(this.#tokenizer)
      : new IncrementalDetokenizer(this.#tokenizer, promptIds);
    const stop = new StopMatcher(options.stop);
    const indent = options.minIndent ? new IndentStop(options.minIndent) : null;
    /** The text after the stop strings and the indentation are cut. */
    const cut = (text: string) => {
      const kept = stop.push(text);
      return indent === null ? kept : indent.push(kept);
    };
    let firstTokenAt = 0;
    const ending = new Set([
      ...(options.ignoreEos ? [] : this.#tokenizer.eos),
      ...options.stopTokenIds ?? [],
    ]);
    const minTokens = options.minTokens ?? 0;
    const limit = Math.min(options.maxTokens, this.#model.contextLength - promptIds.length);
    const generated: number[] = [];
    const thinking = reasoningParser(options.reasoning);
    let reasoningTokens = 0;
    /** The closing marker's tokens still to write, once the reasoning budget is spent. */
    let closing: number[] | null = options.reasoningBudget === undefined ? [] : null;
    /** Text safe to send, split into reasoning and answer for a thinking model. */
    const send = (text: string) => {
      // The tokens that open and close the block count as reasoning.
      const before = thinking?.inReasoning;
      const piece = thinking?.push(text) ?? { reasoning: "", content: text };
      if (before || thinking?.inReasoning) reasoningTokens++;
      emit(piece);
    };
    const emit = ({ reasoning, content }: ReasoningPiece) => {
      if (reasoning === "" && content === "") return;
      events.push({
        type: "text",
        text: content,
        ...(reasoning === "" ? {} : { reasoning }),
        ...logprobs?.take(),
      });
    };
    const logprobs = options.logprobs === undefined ? null : new LogprobsQueue();
    const events = new EventQueue<GenerationEvent>();
    let finishReason: FinishReason = "length";
    let scored: TokenLogprob[] | null = options.promptLogprobs === undefined ? null : [];
    const promptLogits = (logits: Float32Array, from: number, count: number) => {
      const vocab = logits.length / count;
      for (let i = 0; i < count; i++) {
        const row = logits.subarray(i * vocab, (i + 1) * vocab);
        scored!.push(tokenLogprob(row, promptIds[from + i + 1]!, options.promptLogprobs!));
      }
    };
    const next = (logits: Float32Array): number | null => {
      if (scored !== null) {
        events.push({ type: "prompt", logprobs: scored });
        scored = null;
      }
      if (limit <= 0) return null;
      if (
        closing === null && thinking?.inReasoning && reasoningTokens >= options.reasoningBudget!
      ) {
        closing = this.#tokenizer.encode(options.reasoning!.markers.close, { addBos: false });
      }
      let id = closing?.shift();
      if (id === undefined) {
        const allowed = constraint?.mask(limit - generated.length) ?? undefined;
        if (generated.length < minTokens) { for (const id of ending) logits[id] = -Infinity; }
        id = sampler.sample(logits, generated, allowed);
      }
      if (ending.has(id)) {
        finishReason = "stop";
        return null;
      }
      constraint?.accept(id);
      generated.push(id);
      if (generated.length === 1) {
        firstTokenAt = performance.now();
        options.onFirstToken?.();
      }
      logprobs?.add(tokenLogprob(logits, id, options.logprobs!));
      const piece = detokenizer.push(id);
      send(cut(piece));
      if (stop.stopped || constraint?.complete) {
        finishReason = "stop";
        return null;
      }
      if (indent?.stopped) return null;
      if (
        options.timeLimitMs !== undefined && piece.includes("\n") &&
        performance.now() - firstTokenAt >= options.timeLimitMs
      ) return null;
      return generated.length >= limit ? null : id;
    };
    // Guesses run on the graph that gives every position's logits, as a prompt's scoring does.
    const draft = options.prediction === undefined || !this.scoresPrompts
      ? null
      : new PredictionDraft(this.#predictionTokens(options.prediction, limit));
    const run = this.#model.submit({
      prompt: promptIds,
      maxTokens: Math.max(0, limit),
      next,
      ...(scored === null ? {} : { promptLogits }),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(draft ? { draft: (most: number) => draft.guess(generated, most) } : {}),
    });
    run.done.then((outcome) => {
      if (!stop.stopped && !indent?.stopped) {
        let rest = cut(detokenizer.flush());
        if (stop.stopped) finishReason = "stop";
        else rest += indent ? indent.push(stop.flush()) + indent.flush() : stop.flush();
        if (rest !== "") emit(thinking?.push(rest) ?? { reasoning: "", content: rest });
      }
      if (thinking) emit(thinking.flush());
      events.push({
        type: "done",
        finishReason,
        promptTokens: promptIds.length,
        completionTokens: generated.length,
        ids: generated,
        cachedTokens: outcome.cachedTokens,
        reasoningTokens,
        acceptedPredictionTokens: outcome.acceptedGuesses,
        rejectedPredictionTokens: outcome.rejectedGuesses,
        stopString: stop.matched,
        ...logprobs?.take(),
      });
      events.close();
    }, (error) => events.fail(error));
    yield* events;
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

const GRAMMAR_CACHE = 8;
/**
 * Characters a token stands for at most, as far as the text read ahead of a cut is concerned:
 * a text that only so many tokens of can be used is read no further than this many per token.
 */
export const CHARS_PER_TOKEN = 16;
const MAX_GRAMMAR_STATES = 100_000;

/** Events pushed by the step loop and pulled by the request's generator. */
class EventQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #closed = false;
  #error: { reason: unknown } | null = null;
  #wake: (() => void) | null = null;

  push(item: T): void {
    this.#items.push(item);
    this.#signal();
  }

  close(): void {
    this.#closed = true;
    this.#signal();
  }

  fail(reason: unknown): void {
    this.#error = { reason };
    this.#signal();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    while (true) {
      if (this.#items.length > 0) {
        yield this.#items.shift()!;
        continue;
      }
      if (this.#error) throw this.#error.reason;
      if (this.#closed) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}
