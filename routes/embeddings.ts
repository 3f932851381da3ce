import { Hono } from "hono";
import { ApiError, invalidRequest } from "./errors.ts";
import { checkFields, EMBEDDING_FIELDS } from "./fields.ts";
import { checkContext, inPlaces, promptTokens } from "./job.ts";
import type { ServingState } from "./state.ts";
import type { InferenceService } from "../src/engine/service.ts";
import { toBase64 } from "../src/storage/bytes.ts";
import { integer, modelName, promptFieldOf, promptList, readJsonObject } from "./validate.ts";

/** Most inputs one request may hold, as OpenAI's API allows. */
export const MAX_INPUTS = 2048;

/**
 * `POST /embeddings`: OpenAI embeddings. Each input's vector is the hidden state of its last
 * position (the input of the model's classifier, after the final norm: last-token pooling, as
 * decoder embedding models use), scaled to length 1. The inputs run as sequences of the
 * scheduler's batch, at most `maxBatch` at a time, each batch place taken in the queue.
 */
export function embeddingsRoute(state: ServingState): Hono {
  const app = new Hono();
  app.post("/embeddings", async (c) => {
    const body = await readJsonObject(c.req.raw);
    checkFields(body, EMBEDDING_FIELDS);
    const inputs = promptList(body, "input", MAX_INPUTS);
    const format = encodingFormat(body.encoding_format);
    const service = state.requireModel(modelName(body));
    const { vectors, tokens } = await embedAll(state, service, inputs, {
      field: "input",
      dimensions: integer(body, "dimensions", 1, Number.MAX_SAFE_INTEGER),
      signal: c.req.raw.signal,
    });
    return c.json({
      object: "list",
      data: vectors.map((vector, index) => ({
        object: "embedding",
        index,
        embedding: encode(unitLength(vector), format),
      })),
      model: service.modelId,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  });
  return app;
}

/** What `embedAll` checks its inputs against and names in errors. */
export interface EmbedOptions {
  /** The request field of the inputs. */
  readonly field: string;
  /** The request's `dimensions`, which must be the model's size when given. */
  readonly dimensions?: number | undefined;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
}

/**
 * Each input's vector (embeddingSize,) as the model gives it, and the tokens read. The inputs
 * run as sequences of the scheduler's batch, at most `maxBatch` at a time, each batch place
 * taken in the queue; every failure before they run is a 400 naming the input.
 */
export async function embedAll(
  state: ServingState,
  service: InferenceService,
  inputs: readonly (string | readonly number[])[],
  options: EmbedOptions,
): Promise<{ vectors: Float32Array[]; tokens: number }> {
  const { field } = options;
  const size = service.embeddingSize;
  if (size === 0) {
    throw new ApiError(400, `The model '${service.modelId}' gives no embeddings`, {
      param: "model",
      code: "model_not_supported",
    });
  }
  const { dimensions } = options;
  if (dimensions !== undefined && dimensions !== size) {
    throw invalidRequest(
      `'dimensions' must be ${size}, the model's, got ${dimensions}`,
      "dimensions",
    );
  }
  const ids = inputs.map((input, i) => {
    const at = promptFieldOf(field, inputs.length, i);
    const tokens = promptTokens(service, input, at);
    checkContext(service, tokens, at);
    return tokens;
  });
  const vectors = await inPlaces(
    state,
    options.signal,
    ids.length,
    (i, signal) => service.embed(ids[i]!, signal),
  );
  return { vectors, tokens: ids.reduce((n, t) => n + t.length, 0) };
}

function encodingFormat(value: unknown): "float" | "base64" {
  if (value === undefined || value === null || value === "float") return "float";
  if (value === "base64") return "base64";
  throw invalidRequest("'encoding_format' must be float or base64", "encoding_format");
}

/** `v` (dim,) scaled to length 1 (a zero vector stays zero). */
export function unitLength(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  return v.map((x) => x * scale);
}

/** Numbers, or the little-endian float32 bytes in base64, as OpenAI sends them. */
function encode(v: Float32Array, format: "float" | "base64"): number[] | string {
  if (format === "float") return Array.from(v);
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  v.forEach((x, i) => view.setFloat32(i * 4, x, true));
  return toBase64(bytes);
}
