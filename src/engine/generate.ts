/** Token-by-token generation over a {@link Session}: the loop serving and the CLI consume. */
import { setImmediate } from "node:timers";
import type { Model } from "../graph/model.ts";
import { Sampler, type SamplingOptions } from "./sampler.ts";
import { kernelWeigh } from "./kernel_weigh.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { Session } from "./session.ts";

/** Options of {@link generate}. */
export interface GenerationOptions {
  /** Most tokens to generate (default 256). */
  readonly maxTokens?: number;
  /** How to pick each token (default: temperature 1, unseeded). */
  readonly sampling?: SamplingOptions;
  /** Stops the generation between two steps. */
  readonly signal?: AbortSignal;
  /** Stop (without yielding it) at one of the tokenizer's end tokens (default true). */
  readonly stopAtEos?: boolean;
  /** A session to reuse (it is reset first); a new one is created otherwise. */
  readonly session?: Session;
  /** Called once the prompt has been processed, e.g. to time prefill apart from decode. */
  readonly onPrefill?: (promptTokens: number) => void;
}

/** Lets timers, I/O and abort events run; nested `setTimeout(0)` would be clamped to 4 ms. */
function nextTick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Prefills `promptIds`, then samples and decodes up to `maxTokens` tokens, yielding each
 * generated id. Yields to the event loop between steps and checks `signal` there. Stops
 * early at an end token (unless `stopAtEos` is false) or when the next token would break
 * the graph's assertions (the context is full).
 *
 * @example
 * ```ts ignore
 * for await (const id of generate(model, tokenizer, tokenizer.encode("Once upon a time"), { maxTokens: 32, sampling: { temperature: 0 } })) {
 *   console.log(id);
 * }
 * ```
 */
export async function* generate(
  model: Model,
  tokenizer: Tokenizer,
  promptIds: readonly number[],
  options: GenerationOptions = {},
): AsyncGenerator<number, void, void> {
  const maxTokens = options.maxTokens ?? 256;
  const stopAtEos = options.stopAtEos ?? true;
  const session = options.session ?? new Session(model);
  session.reset();
  const weigh = session.kernels ? { weigh: kernelWeigh(session.kernels) } : {};
  const sampler = new Sampler(options.sampling ?? {}, weigh);
  if (promptIds.length === 0) throw new RangeError("The prompt has no tokens");
  if (!session.fits(promptIds.length)) {
    throw new RangeError(
      `The prompt of ${promptIds.length} tokens does not fit the model's context`,
    );
  }
  options.signal?.throwIfAborted();
  let logits = await session.prefillAsync(promptIds);
  options.onPrefill?.(promptIds.length);
  const generated: number[] = [];
  while (generated.length < maxTokens) {
    const token = sampler.sample(logits, generated);
    if (stopAtEos && tokenizer.eos.includes(token)) return;
    generated.push(token);
    yield token;
    if (generated.length >= maxTokens || !session.fits(1)) return;
    await nextTick();
    if (options.signal?.aborted) return;
    logits = await session.decodeAsync(token);
  }
}
