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
  // Texts far over the limit are told apart without being tokenized.
  const fits = (text: string) =>
    service.leastTokens(text) <= limit && service.encodePrompt(text).length <= limit;
  const whole = render(messages);
  if (fits(whole)) return { messages, prompt: whole, dropped: 0 };
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
    if (fits(prompt)) {
      best = { messages: kept, prompt, dropped: cuts[mid]! - head };
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
