/**
 * Fitting a conversation to the context by dropping its oldest turns, for the requests that ask
 * for it (the Responses API's `truncation: "auto"`, Ollama's `truncate: true`).
 */
import type { ChatMessage } from "../src/engine/chat_template.ts";
import type { InferenceService } from "../src/engine/service.ts";

/** A conversation as it will be read: its messages and its rendered prompt. */
export interface Fitted {
  readonly messages: readonly ChatMessage[];
  readonly prompt: string;
  /** The prompt's tokens when it fits (encoded once, here); undefined when nothing fit. */
  readonly ids?: number[];
  /** Messages dropped from the start of the conversation. */
  readonly dropped: number;
}

/**
 * The shortest cut of `messages` whose prompt leaves `room` tokens of the context: whole turns
 * are dropped from the start (what is left starts with a user message), the system (and
 * developer) messages at its head kept. When even the last turn does not fit, the whole conversation is returned, for
 * the context check to refuse. `render` gives a conversation's prompt text.
 *
 * @param room tokens the answer needs after the prompt (the request's cap on it, or a quarter
 *   of the context)
 */
export function fitConversation(
  service: InferenceService,
  messages: readonly ChatMessage[],
  render: (messages: readonly ChatMessage[]) => string,
  room: number,
): Fitted {
  const limit = service.contextLength - Math.max(1, room);
  // The prompt's ids when it fits; texts far over the limit are told apart untokenized.
  const fits = (text: string): number[] | undefined => {
    if (service.leastTokens(text) > limit) return undefined;
    const ids = service.encodePrompt(text);
    return ids.length <= limit ? ids : undefined;
  };
  const whole = render(messages);
  const wholeIds = fits(whole);
  if (wholeIds) return { messages, prompt: whole, ids: wholeIds, dropped: 0 };
  const head = messages.findIndex((m) => m.role !== "system" && m.role !== "developer");
  // Where a turn may start: a user message after the head (the first is not a cut).
  const cuts = messages.flatMap((m, i) => (i > head && m.role === "user" ? [i] : []));
  const cut = (at: number) => [...messages.slice(0, head), ...messages.slice(at)];
  // Fewer turns give fewer tokens: the earliest cut that fits, by bisection.
  let [lo, hi] = [0, cuts.length - 1];
  let best: Fitted | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const kept = cut(cuts[mid]!);
    const prompt = render(kept);
    const ids = fits(prompt);
    if (ids) {
      best = { messages: kept, prompt, ids, dropped: cuts[mid]! - head };
      hi = mid - 1;
    } else {
      lo = mid + 1;
    }
  }
  return best ?? { messages, prompt: whole, dropped: 0 };
}

/**
 * The room an answer gets when truncating: the request's cap on it, or a quarter of the context
 * (no more than the server's cap).
 */
export function answerRoom(
  service: InferenceService,
  maxTokens: number | undefined,
  serverCap: number,
): number {
  return maxTokens ?? Math.min(serverCap, Math.floor(service.contextLength / 4));
}
