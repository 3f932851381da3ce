/**
 * `POST /v1/rerank` (and llama.cpp's `/rerank`, `/reranking`, `/v1/reranking`): documents
 * ordered by their relevance to a query, as Jina's, Cohere's and llama.cpp's rerank APIs
 * answer; and vLLM's `POST /v1/score`, the same relevance for pairs of texts. A document's
 * relevance is the model's probability of answering "yes" rather than "no" to the question
 * Qwen3-Reranker is trained on (does this document meet the query?), in that model's prompt:
 * meaningful for Qwen3-Reranker, a judge's guess for other chat models.
 */
import { type Context, Hono } from "hono";
import type { InferenceService } from "../src/engine/service.ts";
import { ApiError, invalidRequest } from "./errors.ts";
import { checkFields, RERANK_FIELDS, SCORE_FIELDS } from "./fields.ts";
import { isRecord } from "./messages.ts";
import { checkContext, inPlaces, promptTokens, unixSeconds } from "./job.ts";
import type { ServingState } from "./state.ts";
import { boolean, integer, modelName, readJsonObject } from "./validate.ts";

/** Most documents one request may rank. */
const MAX_DOCUMENTS = 1024;

/** Qwen3-Reranker's task when the request gives none. */
export const DEFAULT_INSTRUCTION =
  "Given a web search query, retrieve relevant passages that answer the query";

/** Qwen3-Reranker's prompt around its instruction, query and document. */
const PROMPT_HEAD = "<|im_start|>system\nJudge whether the Document meets the requirements " +
  'based on the Query and the Instruct provided. Note that the answer can only be "yes" or ' +
  '"no".<|im_end|>\n<|im_start|>user\n';
const PROMPT_TAIL = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";

/** The prompt that asks whether `document` meets `query` under `instruction`. */
export function rerankPrompt(instruction: string, query: string, document: string): string {
  return `${PROMPT_HEAD}<Instruct>: ${instruction}\n<Query>: ${query}\n<Document>: ${document}${PROMPT_TAIL}`;
}

/** The rerank endpoints, under the four paths clients post to, and the score endpoints. */
export function rerankRoute(state: ServingState): Hono {
  const app = new Hono();
  const rerank = async (c: Context) => {
    const body = await readJsonObject(c.req.raw);
    checkFields(body, RERANK_FIELDS, "ignored");
    const service = state.requireModel(modelName(body));
    const query = text(body.query, "query");
    const field = body.documents === undefined && body.texts !== undefined ? "texts" : "documents";
    const documents = documentList(body[field], field);
    // vLLM's default, 0, asks for all of them too.
    const topN = integer(body, "top_n", 0, Number.MAX_SAFE_INTEGER) || documents.length;
    const withDocuments = boolean(body, "return_documents") ?? boolean(body, "return_text") ??
      false;
    const { scores, tokens } = await judge(
      state,
      service,
      documents.map((document, i) => ({ query, document, field: `${field}[${i}]` })),
      instructionOf(body),
      c.req.raw.signal,
    );
    const results = scores
      .map((score, index) => ({
        index,
        relevance_score: score,
        ...(withDocuments ? { document: { text: documents[index]! } } : {}),
      }))
      .sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index)
      .slice(0, topN);
    return c.json({
      model: service.modelId,
      object: "list",
      results,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  };
  for (const path of ["/v1/rerank", "/v1/reranking", "/rerank", "/reranking"]) {
    app.post(path, rerank);
  }

  // vLLM's score API: text_1 against each of text_2, or the two lists pair by pair.
  const score = async (c: Context) => {
    const body = await readJsonObject(c.req.raw);
    checkFields(body, SCORE_FIELDS, "ignored");
    const service = state.requireModel(modelName(body));
    const queries = textList(body.text_1, "text_1");
    const documents = textList(body.text_2, "text_2");
    if (queries.length !== 1 && queries.length !== documents.length) {
      throw invalidRequest(
        `'text_1' must hold one text or as many as 'text_2' (${documents.length}), got ${queries.length}`,
        "text_1",
      );
    }
    const { scores, tokens } = await judge(
      state,
      service,
      documents.map((document, i) => ({
        query: queries[queries.length === 1 ? 0 : i]!,
        document,
        field: `text_2[${i}]`,
      })),
      instructionOf(body),
      c.req.raw.signal,
    );
    return c.json({
      id: `score-${crypto.randomUUID().replaceAll("-", "")}`,
      object: "list",
      created: unixSeconds(),
      model: service.modelId,
      data: scores.map((value, index) => ({ index, object: "score", score: value })),
      usage: { prompt_tokens: tokens, completion_tokens: 0, total_tokens: tokens },
    });
  };
  for (const path of ["/v1/score", "/score"]) app.post(path, score);
  return app;
}

/** One question to the judge: does `document` meet `query`? Named `field` in errors. */
interface Pair {
  readonly query: string;
  readonly document: string;
  readonly field: string;
}

/**
 * Each pair's probability of "yes" over "no" in Qwen3-Reranker's prompt, the pairs run as
 * sequences of the batch; and the prompt tokens read.
 */
async function judge(
  state: ServingState,
  service: InferenceService,
  pairs: readonly Pair[],
  instruction: string,
  signal: AbortSignal,
): Promise<{ scores: number[]; tokens: number }> {
  const answers = judgeTokens(service);
  const prompts = pairs.map(({ query, document, field }) => {
    const ids = promptTokens(service, rerankPrompt(instruction, query, document), field);
    checkContext(service, ids, field);
    return ids;
  });
  const logits = await inPlaces(
    state,
    signal,
    prompts.length,
    (i, aborted) => service.nextLogits(prompts[i]!, answers, aborted),
  );
  return {
    scores: logits.map(([yes, no]) => 1 / (1 + Math.exp(no! - yes!))),
    tokens: prompts.reduce((n, ids) => n + ids.length, 0),
  };
}

/** The request's `instruction`, or Qwen3-Reranker's default. */
function instructionOf(body: Record<string, unknown>): string {
  return body.instruction === undefined || body.instruction === null
    ? DEFAULT_INSTRUCTION
    : text(body.instruction, "instruction");
}

/** A text or a non-empty list of texts. */
function textList(value: unknown, field: string): string[] {
  if (typeof value === "string") return [value];
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_DOCUMENTS) {
    throw invalidRequest(
      `'${field}' must be a text or a list of 1 to ${MAX_DOCUMENTS} texts`,
      field,
      "invalid_type",
    );
  }
  return value.map((item, i) => text(item, `${field}[${i}]`));
}

/** The ids of the single tokens "yes" and "no"; a 400 naming the model when there are none. */
function judgeTokens(service: InferenceService): [number, number] {
  const single = (word: string) => {
    const ids = service.tokenizer.encode(word, { addBos: false });
    return ids.length === 1 ? ids[0]! : null;
  };
  const [yes, no] = [single("yes"), single("no")];
  if (yes === null || no === null) {
    throw new ApiError(
      400,
      `The model '${service.modelId}' cannot rerank: its vocabulary has no single tokens for "yes" and "no"`,
      { param: "model", code: "model_not_supported" },
    );
  }
  return [yes, no];
}

function text(value: unknown, field: string): string {
  if (value === undefined || value === null) {
    throw invalidRequest(`Missing required field '${field}'`, field, "missing_required");
  }
  if (typeof value !== "string") {
    throw invalidRequest(`'${field}' must be a string`, field, "invalid_type");
  }
  return value;
}

/** `documents`: texts, or objects with `text` (Cohere's and Jina's other form). */
function documentList(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw invalidRequest(`'${field}' must be a non-empty array of texts`, field, "invalid_type");
  }
  if (value.length > MAX_DOCUMENTS) {
    throw invalidRequest(`'${field}' holds more than ${MAX_DOCUMENTS} documents`, field);
  }
  return value.map((document, i) => {
    const found = isRecord(document) ? document.text : document;
    if (typeof found !== "string") {
      throw invalidRequest(
        `'${field}[${i}]' must be a text or {"text": ...}`,
        `${field}[${i}]`,
        "invalid_type",
      );
    }
    return found;
  });
}
