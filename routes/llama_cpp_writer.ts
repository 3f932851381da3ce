/**
 * How llama.cpp's `/completion` and `/infill` write an answer: server-sent events of pieces of
 * text, then the result with `stop: true` (and no `[DONE]`), or the result alone.
 */
import type { InferenceService } from "../src/engine/service.ts";
import type { TokenLogprob } from "../src/engine/sampler.ts";
import { tokenText } from "./generation.ts";
import { type Answer, dataFrame, type DoneEvent, type JobWriter } from "./job.ts";
import type { LlamaCppRequest } from "./llama_cpp_request.ts";

/** What a llama.cpp writer needs to know of its request. */
export interface LlamaCppPlan {
  /** The model as the request named it. */
  readonly model: string;
  /** `performance.now()` when the request arrived. */
  readonly arrived: number;
  /** Each prompt's ids; choice i answers prompt i. */
  readonly prompts: readonly (readonly number[])[];
  /** The prompt was a list: the whole answer is an array of results. */
  readonly many: boolean;
  readonly request: LlamaCppRequest;
}

/**
 * The frames and the whole answer of `/completion` or `/infill`: each piece of text as
 * `{index, content, stop: false}`, then the result: the counts, why it ended (`stop_type` eos,
 * word or limit), the timings, the settings, and with `n_probs` every token's log-probability.
 */
export function llamaCppWriter(
  service: Pick<InferenceService, "tokenizer" | "contextLength">,
  plan: LlamaCppPlan,
): JobWriter {
  const { tokenizer } = service;
  const { request } = plan;
  const settings = {
    n_predict: request.maxTokens ?? -1,
    temperature: request.sampling.temperature,
    top_k: request.sampling.topK,
    top_p: request.sampling.topP,
    min_p: request.sampling.minP,
    repeat_penalty: request.sampling.repetitionPenalty ?? 1,
    presence_penalty: request.sampling.presencePenalty ?? 0,
    frequency_penalty: request.sampling.frequencyPenalty ?? 0,
    seed: request.sampling.seed ?? -1,
    stop: request.stop,
    n_probs: request.logprobs ?? 0,
    ignore_eos: request.ignoreEos,
    n_indent: request.minIndent,
    t_max_predict_ms: request.timeLimitMs ?? 0,
    stream: request.stream,
    n_ctx: service.contextLength,
    model: plan.model,
  };
  const probabilities = (entries: readonly TokenLogprob[]) =>
    entries.map((entry) => ({
      id: entry.id,
      ...tokenText(tokenizer, entry.id),
      logprob: entry.logprob,
      top_logprobs: entry.top.map((t) => ({
        id: t.id,
        ...tokenText(tokenizer, t.id),
        logprob: t.logprob,
      })),
    }));
  const result = (
    choice: number,
    content: string,
    text: string,
    event: DoneEvent,
    firstTextAt: number,
    probs: readonly TokenLogprob[] | null,
  ) => {
    const now = performance.now();
    const promptMs = firstTextAt - plan.arrived;
    const predictedMs = now - firstTextAt;
    const read = event.promptTokens - event.cachedTokens;
    const everything = {
      index: choice,
      content,
      tokens: request.returnTokens ? event.ids : [],
      id_slot: -1,
      stop: true,
      model: plan.model,
      tokens_predicted: event.completionTokens,
      tokens_evaluated: event.promptTokens,
      generation_settings: settings,
      prompt: tokenizer.decode(plan.prompts[choice]!),
      has_new_line: text.includes("\n"),
      truncated: event.finishReason === "length" &&
        event.promptTokens + event.completionTokens >= service.contextLength,
      stop_type: event.stopString !== null
        ? "word"
        : event.finishReason === "stop"
        ? "eos"
        : "limit",
      stopping_word: event.stopString ?? "",
      tokens_cached: event.promptTokens + event.completionTokens,
      timings: {
        cache_n: event.cachedTokens,
        prompt_n: read,
        prompt_ms: promptMs,
        prompt_per_token_ms: read > 0 ? promptMs / read : 0,
        prompt_per_second: promptMs > 0 ? (1000 * read) / promptMs : 0,
        predicted_n: event.completionTokens,
        predicted_ms: predictedMs,
        predicted_per_token_ms: event.completionTokens > 0
          ? predictedMs / event.completionTokens
          : 0,
        predicted_per_second: predictedMs > 0 ? (1000 * event.completionTokens) / predictedMs : 0,
      },
      ...(probs === null ? {} : { completion_probabilities: probabilities(probs) }),
    };
    return project(everything, request.responseFields);
  };

  /** Each choice's text so far (for `has_new_line`) and when it began. */
  const texts: string[] = [];
  const firstAt: number[] = [];
  return {
    opening: () => [],
    text: (event, choice) => {
      firstAt[choice] ??= performance.now();
      texts[choice] = (texts[choice] ?? "") + event.text;
      if (event.text === "" && event.logprobs === undefined) return [];
      return [
        dataFrame({
          index: choice,
          content: event.text,
          stop: false,
          ...(event.logprobs === undefined
            ? {}
            : { completion_probabilities: probabilities(event.logprobs) }),
        }),
      ];
    },
    // The tokens the text frames did not report yet (a stop string's) come last.
    done: (event, choice) => [
      dataFrame(
        result(
          choice,
          "",
          texts[choice] ?? "",
          event,
          firstAt[choice] ?? performance.now(),
          event.logprobs?.length ? event.logprobs : null,
        ),
      ),
    ],
    error: (error) => dataFrame(error.toJSON()),
    whole: (answers) => {
      const results = answers.map(({ text, event, logprobs, firstTextAt }: Answer, choice) =>
        result(
          choice,
          text,
          text,
          event,
          firstTextAt,
          request.logprobs === undefined ? null : logprobs,
        )
      );
      return plan.many ? results : results[0]!;
    },
  };
}

/**
 * The fields of `result` that `fields` name (all when undefined); a path such as
 * `timings/prompt_n` is read inside objects and keyed by the path, a missing one left out.
 */
export function project(
  result: Record<string, unknown>,
  fields: readonly string[] | undefined,
): Record<string, unknown> {
  if (fields === undefined) return result;
  const picked: Record<string, unknown> = {};
  for (const path of fields) {
    let value: unknown = result;
    for (const key of path.split("/")) {
      value = typeof value === "object" && value !== null && Object.hasOwn(value, key)
        ? (value as Record<string, unknown>)[key]
        : undefined;
    }
    if (value !== undefined) picked[path] = value;
  }
  return picked;
}
