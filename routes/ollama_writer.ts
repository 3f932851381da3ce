/**
 * How Ollama's `/api/chat` and `/api/generate` write an answer: lines of JSON while it is
 * generated, or one object for the whole.
 */
import type { InferenceService } from "../src/engine/service.ts";
import type { TokenLogprob } from "../src/engine/sampler.ts";
import { argumentsValue, type ToolCall, ToolCallParser } from "../src/engine/tool_calls.ts";
import { loggedToken, logprobEntry } from "./generation.ts";
import type { Answer, DoneEvent, JobWriter } from "./job.ts";

/** The fields every answer of `chat` and `generate` starts with. */
export function envelope(model: string): { model: string; created_at: string } {
  return { model, created_at: new Date().toISOString() };
}

/** Milliseconds as Ollama's durations, in whole nanoseconds. */
export function nanoseconds(ms: number): number {
  return Math.round(ms * 1e6);
}

/** What an Ollama writer needs to know of its request. */
export interface OllamaPlan {
  readonly kind: "chat" | "generate";
  /** The model as the request named it. */
  readonly model: string;
  /** `performance.now()` when the request arrived. */
  readonly arrived: number;
  /** The answer is read for tool calls in the model's format. */
  readonly toolCalls: boolean;
  /** The prompt's ids, sent back with the answer's as `context` (generate, unless raw). */
  readonly context: readonly number[] | null;
}

/**
 * The lines and the whole answer of `chat` or `generate`: pieces of text (and a thinking
 * model's reasoning as `thinking`), each tool call once its text is complete, then a last line
 * with `done`, why it ended, the token counts and durations in nanoseconds.
 */
export function ollamaWriter(
  service: Pick<InferenceService, "tokenizer" | "toolFamily">,
  plan: OllamaPlan,
): JobWriter {
  const { kind, model, arrived } = plan;
  const line = (payload: object) => `${JSON.stringify(payload)}\n`;
  const logprobsOf = (entries: readonly TokenLogprob[] | undefined) =>
    entries === undefined || entries.length === 0
      ? {}
      : { logprobs: entries.map((entry) => logprobEntry(loggedToken(service.tokenizer, entry))) };
  const callOf = (call: ToolCall, index: number) => ({
    id: call.id,
    function: { index, name: call.name, arguments: argumentsValue(call.arguments) },
  });
  const piece = (content: string, thinking: string, calls: readonly object[]) =>
    kind === "chat"
      ? {
        message: {
          role: "assistant",
          content,
          ...(thinking === "" ? {} : { thinking }),
          ...(calls.length === 0 ? {} : { tool_calls: calls }),
        },
      }
      : { response: content, ...(thinking === "" ? {} : { thinking }) };
  const ending = (event: DoneEvent, firstTextAt: number) => {
    const now = performance.now();
    return {
      done: true,
      done_reason: event.finishReason === "length" ? "length" : "stop",
      ...(plan.context === null ? {} : { context: [...plan.context, ...event.ids] }),
      total_duration: nanoseconds(now - arrived),
      load_duration: 0,
      prompt_eval_count: event.promptTokens,
      prompt_eval_duration: nanoseconds(firstTextAt - arrived),
      eval_count: event.completionTokens,
      eval_duration: nanoseconds(now - firstTextAt),
    };
  };

  const parser = plan.toolCalls ? new ToolCallParser(service.toolFamily) : undefined;
  let sent = 0;
  /** The calls completed since the last line. */
  const newCalls = () => {
    const calls = parser?.calls.slice(sent).map((call, k) => callOf(call, sent + k)) ?? [];
    sent += calls.length;
    return calls;
  };
  let firstTextAt: number | undefined;
  return {
    opening: () => [],
    text: (event) => {
      firstTextAt ??= performance.now();
      const content = parser ? parser.push(event.text).content : event.text;
      const calls = newCalls();
      const thinking = event.reasoning ?? "";
      const logprobs = logprobsOf(event.logprobs);
      if (content === "" && thinking === "" && calls.length === 0 && !("logprobs" in logprobs)) {
        return [];
      }
      return [
        line({ ...envelope(model), ...piece(content, thinking, calls), done: false, ...logprobs }),
      ];
    },
    done: (event) => {
      const content = parser?.flush().content ?? "";
      return [
        line({
          ...envelope(model),
          ...piece(content, "", newCalls()),
          ...ending(event, firstTextAt ?? performance.now()),
          ...logprobsOf(event.logprobs),
        }),
      ];
    },
    error: (error) => line({ error: error.message }),
    whole: ([answer]) => {
      const { text, reasoning, event, logprobs, firstTextAt } = answer as Answer;
      const { content, calls } = parser
        ? { content: parser.push(text).content + parser.flush().content, calls: parser.calls }
        : { content: text, calls: [] };
      return {
        ...envelope(model),
        ...piece(content, reasoning, calls.map(callOf)),
        ...ending(event, firstTextAt),
        ...logprobsOf(logprobs),
      };
    },
  };
}
