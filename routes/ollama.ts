/**
 * Ollama's own API under `/api`, for clients written against it (the `ollama` npm package,
 * editors and chat front ends): `chat` and `generate`, whole or streamed as lines of JSON,
 * `embed` and `embeddings`, and what describes the served model (`tags`, `show`, `ps`,
 * `version`). Errors take Ollama's shape, `{"error": message}`.
 */
import { type Context, Hono } from "hono";
import denoJson from "../deno.json" with { type: "json" };
import type { InferenceService } from "../src/engine/service.ts";
import { fimTokens } from "../src/engine/fill_in_middle.ts";
import { reasoningStart, thinkingMarkers } from "../src/engine/reasoning.ts";
import { ApiError, invalidRequest } from "./errors.ts";
import { embedAll, MAX_INPUTS, unitLength } from "./embeddings.ts";
import { checkFields, OLLAMA_EMBED_FIELDS, OLLAMA_EMBEDDINGS_FIELDS } from "./fields.ts";
import { fimPromptTokens, prepareJob, promptTokens, respondStream, respondWhole } from "./job.ts";
import { renderMessages } from "./messages.ts";
import { answerRoom, fitConversation } from "./truncation.ts";
import type { ChatMessage } from "../src/engine/chat_template.ts";
import {
  type OllamaGeneration,
  ollamaModelName,
  parseOllamaChat,
  parseOllamaGenerate,
} from "./ollama_request.ts";
import { envelope, nanoseconds, type OllamaPlan, ollamaWriter } from "./ollama_writer.ts";
import type { ServingState } from "./state.ts";
import { type OutputPlan, outputPlan } from "./structured.ts";
import { integer, modelName, promptList, readJsonObject } from "./validate.ts";

/** True for the paths of this API, whose errors take Ollama's shape. */
export function isOllamaPath(path: string): boolean {
  return path === "/api" || path.startsWith("/api/");
}

/** An error as Ollama answers it: `{"error": message}` with the status. */
export function ollamaErrorResponse(error: ApiError): Response {
  return Response.json({ error: error.message }, { status: error.status, headers: error.headers });
}

/** What Ollama's API says of the one model served; nothing is pulled, pushed or created. */
export function ollamaRoute(state: ServingState): Hono {
  const app = new Hono();

  app.post("/chat", async (c) => {
    const arrived = performance.now();
    const request = parseOllamaChat(await readJsonObject(c.req.raw));
    const service = state.requireModel(request.model);
    const model = request.model ?? service.modelId;
    if (request.messages.length === 0) {
      return c.json({
        ...envelope(model),
        message: { role: "assistant", content: "" },
        done_reason: "load",
        done: true,
      });
    }
    if (request.responseFormat !== undefined && request.tools.length > 0) {
      throw invalidRequest("'format' cannot be combined with 'tools'", "format");
    }
    // As in Ollama, a final assistant message is continued.
    const last = request.messages.at(-1)!;
    const options = {
      variables: thinkVariables(service, request, model),
      continueFinal: last.role === "assistant" && typeof last.content === "string" &&
        last.content !== "",
    };
    const render = (kept: readonly ChatMessage[]) =>
      renderMessages(service, kept, "messages", request.tools, options);
    const { prompt, ids } = request.truncate
      ? fitConversation(
        service,
        request.messages,
        render,
        answerRoom(service, request.maxTokens, state.config.maxTokensCap),
      )
      : { prompt: render(request.messages) };
    const promptIds = ids ?? promptTokens(service, prompt, "messages");
    const output = outputPlan(
      state,
      service,
      {
        responseFormat: request.responseFormat,
        tools: request.tools,
        toolChoice: "auto",
        formatField: "format",
      },
      reasoningStart(service.chatTemplate, prompt),
    );
    return await respond(c, state, service, request, {
      kind: "chat",
      model,
      arrived,
      promptIds,
      output,
      context: null,
    });
  });

  app.post("/generate", async (c) => {
    const arrived = performance.now();
    const request = parseOllamaGenerate(await readJsonObject(c.req.raw));
    const service = state.requireModel(request.model);
    const model = request.model ?? service.modelId;
    if (request.prompt === "" && request.context.length === 0) {
      return c.json({ ...envelope(model), response: "", done: true, done_reason: "load" });
    }
    // Checked against the vocabulary as any prompt of ids is.
    const context = promptTokens(service, request.context, "context");
    const variables = thinkVariables(service, request, model);
    const { suffix } = request;
    const prompt = request.raw || suffix !== undefined
      ? request.prompt
      : service.tokenizer.decode(context) + renderMessages(
        service,
        [
          ...(request.system === undefined ? [] : [{ role: "system", content: request.system }]),
          { role: "user", content: request.prompt },
        ],
        "prompt",
        [],
        { variables },
      );
    const promptIds = suffix === undefined
      ? promptTokens(service, prompt, "prompt")
      : fimPromptTokens(service, prompt, suffix, "prompt");
    const output = outputPlan(
      state,
      service,
      { responseFormat: request.responseFormat, formatField: "format" },
      request.raw || suffix !== undefined ? null : reasoningStart(service.chatTemplate, prompt),
    );
    return await respond(c, state, service, request, {
      kind: "generate",
      model,
      arrived,
      promptIds,
      output,
      context: request.raw ? null : promptIds,
    });
  });

  app.post("/embed", async (c) => {
    const arrived = performance.now();
    const body = await readJsonObject(c.req.raw);
    checkFields(body, OLLAMA_EMBED_FIELDS);
    const inputs = promptList(body, "input", MAX_INPUTS);
    const name = ollamaModelName(modelName(body));
    const service = state.requireModel(name);
    const { vectors, tokens } = await embedAll(state, service, inputs, {
      field: "input",
      dimensions: integer(body, "dimensions", 1, Number.MAX_SAFE_INTEGER),
      signal: c.req.raw.signal,
    });
    return c.json({
      model: name ?? service.modelId,
      embeddings: vectors.map((v) => Array.from(unitLength(v))),
      total_duration: nanoseconds(performance.now() - arrived),
      load_duration: 0,
      prompt_eval_count: tokens,
    });
  });

  app.post("/embeddings", async (c) => {
    const body = await readJsonObject(c.req.raw);
    checkFields(body, OLLAMA_EMBEDDINGS_FIELDS);
    const prompt = body.prompt;
    if (typeof prompt !== "string") {
      throw invalidRequest("'prompt' must be a string", "prompt", "invalid_type");
    }
    const service = state.requireModel(ollamaModelName(modelName(body)));
    // As Ollama's older endpoint: the vector as the model gives it, not scaled to length 1.
    const { vectors } = await embedAll(state, service, [prompt], {
      field: "prompt",
      signal: c.req.raw.signal,
    });
    return c.json({ embedding: Array.from(vectors[0]!) });
  });

  app.get("/tags", (c) => c.json({ models: [describe(state.requireService())] }));

  app.get("/ps", (c) => {
    const service = state.requireService();
    return c.json({
      models: [{
        ...describe(service),
        // The model is never unloaded.
        expires_at: "9999-12-31T23:59:59Z",
        size_vram: 0,
        context_length: service.contextLength,
      }],
    });
  });

  app.post("/show", async (c) => {
    const body = await readJsonObject(c.req.raw);
    const name = typeof body.model === "string" ? body.model : body.name;
    if (typeof name !== "string") {
      throw invalidRequest("Missing required field 'model'", "model", "missing_required");
    }
    const service = state.requireModel(ollamaModelName(name));
    const { details, modified_at } = describe(service);
    return c.json({
      template: service.chatTemplate,
      parameters: "",
      details,
      model_info: {
        "general.architecture": "nnef",
        "nnef.context_length": service.contextLength,
        ...(service.embeddingSize > 0 ? { "nnef.embedding_length": service.embeddingSize } : {}),
      },
      capabilities: capabilities(service),
      modified_at,
    });
  });

  app.get("/version", (c) => c.json({ version: denoJson.version }));

  for (
    const [method, path, what] of [
      ["POST", "/pull", "pull models"],
      ["POST", "/push", "push models"],
      ["POST", "/create", "create models"],
      ["POST", "/copy", "copy models"],
      ["DELETE", "/delete", "delete models"],
      ["POST", "/blobs/:digest", "take model files"],
    ] as const
  ) {
    app.on(method, path, () => {
      throw new ApiError(
        501,
        `This server serves the one model it was started with (MODEL or --model); it does not ${what}`,
        { code: "not_implemented" },
      );
    });
  }
  return app;
}

/** A chat or generate request's prompt and output, and how its answer is written. */
interface Answering extends Omit<OllamaPlan, "toolCalls"> {
  readonly promptIds: readonly number[];
  readonly output: OutputPlan;
}

/** Queues a chat or generate request's job and answers, streamed or whole. */
async function respond(
  c: Context,
  state: ServingState,
  service: InferenceService,
  request: OllamaGeneration,
  answering: Answering,
): Promise<Response> {
  const { kind, promptIds, output, arrived } = answering;
  const job = prepareJob(state, {
    service,
    request: {
      sampling: request.sampling,
      stop: request.stop,
      maxTokens: request.maxTokens,
      logprobs: request.logprobs,
    },
    prompts: [promptIds],
    promptField: kind === "chat" ? "messages" : "prompt",
    maxTokensField: "options.num_predict",
    outputs: [output],
    id: `ollama-${kind}-${crypto.randomUUID()}`,
    arrived,
    clientSignal: c.req.raw.signal,
  });
  const writer = ollamaWriter(service, { ...answering, toolCalls: output.toolCalls === true });
  return request.stream
    ? respondStream(c, job, writer, "ndjson")
    : await respondWhole(c, job, writer);
}

/**
 * The template variables of `think`: `enable_thinking` as asked; asking a model that does not
 * think to think is a 400, as in Ollama.
 */
function thinkVariables(
  service: InferenceService,
  request: OllamaGeneration,
  model: string,
): Record<string, unknown> {
  if (request.think === undefined) return {};
  if (request.think && thinkingMarkers(service.chatTemplate) === null) {
    throw invalidRequest(`"${model}" does not support thinking`, "think");
  }
  return { enable_thinking: request.think };
}

/**
 * What the model can be asked for, in Ollama's words; tools with every model (a template that
 * does not take them gets them written into its system message).
 */
function capabilities(service: InferenceService): string[] {
  return [
    "completion",
    "tools",
    ...(fimTokens(service.tokenizer) === null ? [] : ["insert"]),
    ...(thinkingMarkers(service.chatTemplate) === null ? [] : ["thinking"]),
    ...(service.embeddingSize > 0 ? ["embedding"] : []),
  ];
}

const STARTED = new Date().toISOString();

/** The served model as Ollama's lists describe one. */
function describe(service: InferenceService) {
  return {
    name: service.modelId,
    model: service.modelId,
    modified_at: STARTED,
    size: service.weightBytes,
    digest: service.systemFingerprint.replace(/^fp_/, ""),
    details: {
      parent_model: "",
      format: "nnef",
      family: "",
      families: [],
      parameter_size: "",
      quantization_level: "",
      context_length: service.contextLength,
      ...(service.embeddingSize > 0 ? { embedding_length: service.embeddingSize } : {}),
    },
  };
}
