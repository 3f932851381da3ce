import { ApiError } from "./errors.ts";

/**
 * What Rill does with one field of a request body: honours it, accepts it with no effect on
 * the answer (informational fields), or refuses it with a 400, unless it is given a value that
 * asks for nothing more than the default (`allows`). A null value counts as absent.
 */
export type FieldRule =
  | { readonly use: "honoured"; readonly note: string }
  | { readonly use: "no effect"; readonly note: string }
  | {
    readonly use: "refused";
    readonly note: string;
    readonly allows?: (value: unknown) => boolean;
  };

/** The fields of one endpoint's request body, each with what is done with it. */
export type FieldTable = Readonly<Record<string, FieldRule>>;

function honoured(note = ""): FieldRule {
  return { use: "honoured", note };
}

function noEffect(note: string): FieldRule {
  return { use: "no effect", note };
}

/** A refusal of the field unless its value passes `allows`. */
function refused(note: string, allows?: (value: unknown) => boolean): FieldRule {
  return allows === undefined ? { use: "refused", note } : { use: "refused", note, allows };
}

function isFalse(value: unknown): boolean {
  return value === false;
}

function oneTier(value: unknown): boolean {
  return value === "auto" || value === "default";
}

function noTools(value: unknown): boolean {
  return Array.isArray(value) && value.length === 0;
}

function noToolChoice(value: unknown): boolean {
  return value === "none" || value === "auto";
}

/** The tool and format fields of chat completions (see `structured.ts`). */
const CHAT_TOOL_FIELDS: FieldTable = {
  tools: honoured("function tools, written in the model's own tool-call format"),
  tool_choice: honoured("none, auto, required or a named function"),
  parallel_tool_calls: honoured("false: at most one call"),
  functions: refused("deprecated: use tools", noTools),
  function_call: refused("deprecated: use tool_choice", noToolChoice),
  response_format: honoured(
    "text, json_object, json_schema (the schema subset in the README)",
  ),
};

/** Chat-only extensions. */
const CHAT_EXTENSIONS: FieldTable = {
  chat_template_kwargs: honoured(
    "extension: variables for the chat template, e.g. `enable_thinking`",
  ),
  continue_final_message: honoured(
    "extension: the answer continues the final message, an assistant's",
  ),
  thinking_token_budget: honoured(
    "extension (vLLM's): most tokens of a thinking model's reasoning block, then its closing marker; -1: no limit",
  ),
};

/** The tool fields of responses (the format is `text.format`, read with the other options). */
const RESPONSE_TOOL_FIELDS: FieldTable = {
  tools: honoured(
    "function tools and namespaces of them, written in the model's own tool-call format; built-in tools (web search, ...) are not offered to the model",
  ),
  tool_choice: honoured("none, auto, required or a named function"),
  parallel_tool_calls: honoured("false: at most one call"),
  max_tool_calls: refused("no limit but parallel_tool_calls", (v) => v === null),
};

/** llama.cpp's samplers that chat front ends send, as extensions of OpenAI's requests. */
const FRONT_END_SAMPLERS: FieldTable = {
  typical_p: honoured("extension (llama.cpp's): locally typical sampling, after top_k; 1 is off"),
  mirostat: honoured(
    "extension (llama.cpp's): 1 or 2, Mirostat in place of top_k, top_p, min_p, typical_p and XTC; 0 is off",
  ),
  mirostat_tau: honoured(
    "extension (llama.cpp's): Mirostat's surprise aimed at, in bits; default 5",
  ),
  mirostat_eta: honoured("extension (llama.cpp's): the rate of Mirostat's steps; default 0.1"),
  xtc_probability: honoured(
    "extension (llama.cpp's): how often XTC drops the candidates at least xtc_threshold likely but the least likely of them",
  ),
  xtc_threshold: honoured("extension (llama.cpp's): default 0.1; above 0.5 XTC is off"),
  top_n_sigma: honoured(
    "extension (llama.cpp's): keep the logits within n standard deviations of the largest; -1 is off",
  ),
  dry_multiplier: honoured(
    "extension (llama.cpp's): DRY's penalty of a token that would repeat a sequence of the prompt and answer; 0 is off",
  ),
  dry_base: honoured("extension (llama.cpp's): default 1.75"),
  dry_allowed_length: honoured("extension (llama.cpp's): default 2"),
  dry_penalty_last_n: honoured("extension (llama.cpp's): -1 (the default): all; 0: off"),
  dry_sequence_breakers: honoured(
    'extension (llama.cpp\'s): default ["\\n", ":", "\\"", "*"]',
  ),
};

const SAMPLING: FieldTable = {
  model: honoured("the served model's id or one of its aliases; may be left out"),
  stream: honoured(),
  stream_options: honoured(
    "`include_usage`; `include_obfuscation` is accepted, no padding is sent",
  ),
  temperature: honoured("0 to 2; 0 is greedy"),
  top_p: honoured(),
  stop: honoured("up to 4 strings, cut from the text"),
  seed: honoured("the same seed, request and system_fingerprint give the same text"),
  frequency_penalty: honoured(),
  presence_penalty: honoured(),
  logit_bias: honoured(),
  n: honoured("choices per prompt; with a seed, choice i samples with seed + i"),
  top_k: honoured("extension: keep the k most likely tokens"),
  min_p: honoured("extension: drop tokens less likely than min_p times the most likely"),
  repetition_penalty: honoured("extension: Hugging Face's repetition penalty"),
  stop_token_ids: honoured("extension: token ids that end a choice as end of sequence does"),
  ignore_eos: honoured("extension: the end-of-sequence token ends nothing"),
  min_tokens: honoured("extension: no ending token before this many tokens"),
  structured_outputs: honoured(
    "extension: the output is one of `choice`, matches `regex`, `json` (a schema) or `grammar` (GBNF), or is a `json_object` (vLLM's)",
  ),
  grammar: honoured("extension (llama.cpp's): a GBNF grammar the output matches"),
  ...FRONT_END_SAMPLERS,
  user: noEffect("informational"),
};

const INFORMATIONAL: FieldTable = {
  safety_identifier: noEffect("informational"),
  metadata: noEffect("informational (stored completions only)"),
  prompt_cache_key: noEffect("prompt caching is automatic, by the prompt's tokens"),
  prompt_cache_retention: noEffect("prompt caching is automatic, by the prompt's tokens"),
  prompt_cache_options: noEffect("prompt caching is automatic, by the prompt's tokens"),
  service_tier: refused("there is one tier", oneTier),
};

/** `POST /v1/chat/completions`. */
export const CHAT_FIELDS: FieldTable = {
  messages: honoured("text content (strings or text parts)"),
  ...SAMPLING,
  max_completion_tokens: honoured(),
  max_tokens: honoured("same as max_completion_tokens"),
  logprobs: honoured(),
  top_logprobs: honoured("0 to 20"),
  ...INFORMATIONAL,
  store: refused("chat completions are not stored", isFalse),
  reasoning_effort: honoured(
    "none or minimal sets a thinking model's enable_thinking false, others true",
  ),
  verbosity: refused("the model has no verbosity setting", (v) => v === "medium"),
  audio: refused("text output only"),
  modalities: refused(
    "text output only",
    (v) => Array.isArray(v) && v.length === 1 && v[0] === "text",
  ),
  prediction: honoured(
    "content (a string or text parts): its tokens are fed as guesses; the answer is the same without it",
  ),
  web_search_options: refused("no web search"),
  moderation: refused("no moderation"),
  ...CHAT_TOOL_FIELDS,
  ...CHAT_EXTENSIONS,
};

/** `POST /v1/completions`. */
export const COMPLETION_FIELDS: FieldTable = {
  prompt: honoured("a string, token ids, or a list of either: each prompt gets n choices"),
  ...SAMPLING,
  max_tokens: honoured(),
  logprobs: honoured("0 to 5 alternatives per token"),
  echo: honoured(
    "each choice's text starts with its prompt, its logprobs with the prompt's (the first token's null); max_tokens may then be 0",
  ),
  best_of: refused("one completion per request", (v) => v === 1),
  suffix: honoured(
    "fill in the middle, for a model with such tokens (Qwen2.5-Coder's, CodeGemma's, StarCoder's, DeepSeek-Coder's)",
  ),
};

/** `POST /v1/responses`. */
export const RESPONSE_FIELDS: FieldTable = {
  model: SAMPLING.model!,
  input: honoured("a string, or messages with text content"),
  instructions: honoured("a system message ahead of the input"),
  previous_response_id: honoured("a stored response of this server"),
  store: honoured("default true: kept in memory for previous_response_id"),
  metadata: honoured("sent back on the response"),
  stream: honoured(),
  stream_options: honoured("`include_obfuscation` is accepted, no padding is sent"),
  max_output_tokens: honoured(),
  temperature: SAMPLING.temperature!,
  top_p: honoured(),
  top_logprobs: honoured("0 to 20, with include `message.output_text.logprobs`"),
  include: honoured(
    "`message.output_text.logprobs`, and `reasoning.encrypted_content` (the reasoning text in base64, not encrypted)",
  ),
  text: honoured("`format`: text, json_object or json_schema (the schema subset in the README)"),
  truncation: honoured(
    "auto: the oldest turns are dropped until the input leaves max_output_tokens (or a quarter of the context) for the answer; disabled (default): an input past the context is a 400",
  ),
  user: noEffect("informational"),
  ...INFORMATIONAL,
  background: refused("responses run in the foreground", isFalse),
  conversation: refused("no conversations; use previous_response_id"),
  prompt: refused("no stored prompts"),
  reasoning: honoured(
    "`effort` none or minimal sets a thinking model's enable_thinking false, others true; no summaries are written",
  ),
  client_metadata: noEffect("informational"),
  context_management: refused("no context management"),
  moderation: refused("no moderation"),
  image: refused("text output only"),
  access_programs: refused("no access programs"),
  ...RESPONSE_TOOL_FIELDS,
};

/**
 * Refuses, with a 400 naming the field, a field `table` does not list and a refused field
 * given a value it does not allow; nothing is dropped silently.
 */
export function checkFields(
  body: Record<string, unknown>,
  table: FieldTable,
  unknown: "refused" | "ignored" = "refused",
): void {
  for (const [field, value] of Object.entries(body)) {
    const rule = table[field];
    if (rule === undefined) {
      if (unknown === "ignored") continue;
      throw new ApiError(400, `Unrecognized request argument supplied: ${field}`, {
        param: field,
        code: "unknown_parameter",
      });
    }
    if (rule.use === "refused" && value !== null && !(rule.allows?.(value) ?? false)) {
      throw new ApiError(400, `'${field}' is not supported: ${rule.note}`, {
        param: field,
        code: "unsupported_parameter",
      });
    }
  }
}

/** `POST /v1/embeddings`. */
export const EMBEDDING_FIELDS: FieldTable = {
  input: honoured("a string, token ids, or a list of either (up to 2048)"),
  model: honoured("the served model's id or one of its aliases; may be left out"),
  encoding_format: honoured("float or base64"),
  dimensions: honoured("the model's hidden size only (vectors are not cut)"),
  user: noEffect("informational"),
};

/** What a prompt of Anthropic's Messages API is made of (`count_tokens` takes these alone). */
const ANTHROPIC_PROMPT_FIELDS: FieldTable = {
  model: SAMPLING.model!,
  messages: honoured(
    "text, tool_use, tool_result and thinking blocks; a final assistant message is continued",
  ),
  system: honoured("a string or text blocks"),
  tools: honoured("client tools (input_schema), written in the model's own tool-call format"),
  tool_choice: honoured("auto, any, tool or none; disable_parallel_tool_use: at most one call"),
  thinking: honoured(
    "enabled (at most budget_tokens of reasoning, then its closing marker) or adaptive let a thinking model reason; disabled sets the template's enable_thinking false",
  ),
  output_config: honoured(
    "`format`: json_schema (the schema subset in the README); `effort` has no effect",
  ),
  cache_control: noEffect("prompt caching is automatic, by the prompt's tokens"),
  context_management: honoured(
    "edits: clear_thinking_20251015 and clear_tool_uses_20250919, applied to the prompt",
  ),
  mcp_servers: refused("no MCP servers"),
  container: refused("no containers"),
  speed: refused("there is one speed", (v) => v === "standard"),
};

/** `POST /v1/messages` (Anthropic's Messages API). */
export const ANTHROPIC_MESSAGES_FIELDS: FieldTable = {
  ...ANTHROPIC_PROMPT_FIELDS,
  max_tokens: honoured(
    "0 fills the prompt into the prefix cache and generates nothing; past the context window it is cut to it",
  ),
  stream: honoured(),
  temperature: honoured("0 to 1; 0 is greedy"),
  top_p: honoured(),
  top_k: honoured(),
  stop_sequences: honoured("up to 32 strings, cut from the text; the one met is stop_sequence"),
  metadata: noEffect("informational"),
  service_tier: refused("there is one tier", (v) => v === "auto" || v === "standard_only"),
  inference_geo: noEffect("the answer is computed where the server runs"),
  diagnostics: refused("no prompt-cache diagnostics"),
};

/** `POST /v1/messages/count_tokens`. */
export const ANTHROPIC_COUNT_FIELDS: FieldTable = ANTHROPIC_PROMPT_FIELDS;

/** The fields of Ollama's `/api/chat` and `/api/generate` that shape the generation. */
const OLLAMA_GENERATION_FIELDS: FieldTable = {
  model: honoured("the served model's id or one of its aliases, with or without `:latest`"),
  stream: honoured("default true: one JSON object a line (application/x-ndjson)"),
  format: honoured("`json` or a JSON schema (the schema subset in the README)"),
  options: honoured("the options listed below"),
  think: honoured(
    "false sets a thinking model's enable_thinking false; true or a level (low, medium, high, max) true; true for a model that does not think is a 400",
  ),
  logprobs: honoured(),
  top_logprobs: honoured("0 to 20"),
  keep_alive: noEffect("the model stays loaded"),
  truncate: honoured(
    "true: a chat's oldest turns are dropped until it leaves num_predict (or a quarter of the context) for the answer; left out or false: a prompt past the context is a 400 (Ollama cuts by default)",
  ),
  shift: noEffect("the context is never shifted: the answer ends at its end (done_reason length)"),
};

/** `POST /api/chat` (Ollama's). */
export const OLLAMA_CHAT_FIELDS: FieldTable = {
  messages: honoured(
    "system, user, assistant (with thinking and tool_calls) and tool (tool_name) messages of text; none: the model is loaded",
  ),
  tools: honoured("function tools, written in the model's own tool-call format"),
  ...OLLAMA_GENERATION_FIELDS,
};

/** `POST /api/generate` (Ollama's). */
export const OLLAMA_GENERATE_FIELDS: FieldTable = {
  prompt: honoured("through the chat template as a user message, or as it is with raw"),
  system: honoured("a system message ahead of the prompt"),
  raw: honoured("the prompt is not templated"),
  context: honoured("token ids of an earlier answer's `context`, ahead of the prompt"),
  suffix: honoured(
    "fill in the middle between the prompt and it, for a model with such tokens (as /v1/completions)",
  ),
  template: refused(
    "Ollama's templates are Go templates; the model's chat template is used",
    (v) => v === "",
  ),
  images: refused("the model reads text", noTools),
  ...OLLAMA_GENERATION_FIELDS,
};

/** The `options` of Ollama's `/api/chat` and `/api/generate`. */
export const OLLAMA_OPTIONS: FieldTable = {
  num_predict: honoured(
    "most tokens to generate; -1 (the default) and -2: up to the context's end",
  ),
  temperature: honoured("default 0.8, Ollama's; 0 is greedy"),
  top_k: honoured("default 40"),
  top_p: honoured("default 0.9"),
  min_p: honoured("default 0"),
  seed: honoured("the same seed and request give the same text; -1: random"),
  stop: honoured("strings, cut from the text"),
  repeat_penalty: honoured("Hugging Face's repetition penalty, over every generated token"),
  presence_penalty: honoured(),
  frequency_penalty: honoured(),
  repeat_last_n: noEffect("the penalties count every generated token"),
  typical_p: honoured("locally typical sampling, after top_k; 1 (the default) is off"),
  num_keep: noEffect("the context is never shifted"),
  num_ctx: noEffect("the context is the model's, served whole"),
  num_batch: noEffect("set by the server: the scheduler's token budget"),
  num_gpu: noEffect("no GPU"),
  main_gpu: noEffect("no GPU"),
  use_mmap: noEffect("weights are read from the archive"),
  num_thread: noEffect("set by the server's --threads"),
  mirostat: honoured(
    "1 or 2: Mirostat, in place of top_k, top_p, min_p, typical_p and XTC (penalties still apply); 0 (the default) is off",
  ),
  mirostat_tau: honoured("the surprise aimed at, in bits; default 5"),
  mirostat_eta: honoured("the rate of Mirostat's steps; default 0.1"),
  tfs_z: refused("no tail-free sampling", (v) => v === 1),
  penalize_newline: noEffect("removed from Ollama; newlines are penalized as other tokens"),
  low_vram: noEffect("no GPU"),
  f16_kv: noEffect("the KV cache's format is the server's"),
  use_mlock: noEffect("weights are read from the archive"),
  numa: noEffect("set by the server"),
  logits_all: noEffect("logprobs give what is asked for"),
  vocab_only: refused("the model is served whole", isFalse),
  embedding_only: noEffect("the model gives answers and embeddings"),
};

/**
 * What llama.cpp's `POST /completion` and `POST /infill` share: everything but the prompt.
 * Fields it does not list are ignored, as llama.cpp ignores them.
 */
const LLAMA_CPP_GENERATION_FIELDS: FieldTable = {
  model: honoured("the served model's id or one of its aliases; may be left out"),
  stream: honoured(
    "server-sent events: a piece of text each, then the result with `stop: true`; no [DONE]",
  ),
  n_predict: honoured(
    "most tokens to generate, cut to the context; -1 (the default): up to the context's end; 0: the prompt is only read into the prefix cache",
  ),
  max_tokens: honoured("n_predict's other name"),
  temperature: honoured("default 0.8, llama.cpp's; 0 or below is greedy"),
  top_k: honoured("default 40"),
  top_p: honoured("default 0.95"),
  min_p: honoured("default 0.05"),
  seed: honoured("the same seed and request give the same text; -1 (the default): random"),
  stop: honoured("strings, cut from the text; the one met is `stopping_word`"),
  repeat_penalty: honoured("Hugging Face's repetition penalty, over every generated token"),
  presence_penalty: honoured(),
  frequency_penalty: honoured(),
  repeat_last_n: noEffect("the penalties count every generated token"),
  samplers: honoured(
    "names (or llama.cpp's letters): top_k, top_p, min_p, typ_p, xtc, top_n_sigma, dry, temperature and penalties left out are off (temperature 1); the order is Rill's; infill is accepted and not applied",
  ),
  n_probs: honoured(
    "0 to 20: `completion_probabilities`, each token's log-probability and the most likely n",
  ),
  post_sampling_probs: refused("probabilities after the samplers are not computed", isFalse),
  ignore_eos: honoured(),
  logit_bias: honoured(
    "[[id or text, bias], ...] or {id: bias}; a bias of false: never; a text biases its tokens",
  ),
  grammar: honoured("a GBNF grammar (llama.cpp's notation)"),
  json_schema: honoured("a JSON schema (the subset in the README)"),
  n_indent: honoured(
    "after the first line, a line indented by fewer spaces or tabs ends the answer (stop_type limit)",
  ),
  t_max_predict_ms: honoured(
    "once this many ms have passed since the first token, the next newline ends the answer",
  ),
  t_max_prompt_ms: noEffect("the prompt is always read whole (llama.cpp ignores it too)"),
  cache_prompt: noEffect("the prefix cache is always on: a prompt's cached blocks are reused"),
  return_tokens: honoured("`tokens`: the answer's token ids"),
  response_fields: honoured(
    "only these fields of the result; a path such as `timings/prompt_n` is read inside objects and keyed by the path",
  ),
  timings_per_token: noEffect("timings come with the result only"),
  return_progress: noEffect("no progress events while the prompt is read"),
  id_slot: noEffect("the scheduler places each sequence"),
  n_keep: noEffect("the context is never shifted"),
  n_discard: noEffect("the context is never shifted"),
  n_cache_reuse: noEffect("the context is never shifted"),
  min_keep: noEffect("samplers keep what they keep"),
  dynatemp_range: refused("no dynamic temperature", (v) => v === 0),
  dynatemp_exponent: noEffect("only read with dynatemp_range"),
  typical_p: honoured("locally typical sampling, after top_k; 1 (the default) is off"),
  mirostat: honoured(
    "1 or 2: Mirostat, in place of top_k, top_p, min_p, typical_p and XTC (penalties still apply); 0 (the default) is off",
  ),
  mirostat_tau: honoured("the surprise aimed at, in bits; default 5"),
  mirostat_eta: honoured("the rate of Mirostat's steps; default 0.1"),
  dry_multiplier: honoured(
    "DRY: a token that would repeat a sequence of the prompt and answer loses multiplier * base^(length - allowed length) of its logit; 0 (the default) is off",
  ),
  dry_base: honoured("default 1.75"),
  dry_allowed_length: honoured("repeats this long are penalized; default 2"),
  dry_penalty_last_n: honoured("the latest tokens looked at; -1 (the default): all; 0: off"),
  dry_sequence_breakers: honoured(
    'default ["\\n", ":", "\\"", "*"]; no repeat holds a token whose text holds one',
  ),
  xtc_probability: honoured(
    "0 to 1: how often XTC drops the candidates at least xtc_threshold likely but the least likely of them",
  ),
  xtc_threshold: honoured("0 to 1, default 0.1; above 0.5 XTC is off"),
  top_n_sigma: honoured(
    "keep the logits within n standard deviations of the largest; -1 (the default) or 0 is off",
  ),
  image_data: refused("the model reads text", noTools),
  multimodal_data: refused("the model reads text", noTools),
  lora: refused("no LoRA adapters", noTools),
};

/** `POST /completion` (llama.cpp's own). */
export const LLAMA_CPP_COMPLETION_FIELDS: FieldTable = {
  prompt: honoured(
    'a text, token ids, or both ([12, "text", 34]: BOS first when it starts with text); a list of texts or lists answers each, in an array',
  ),
  ...LLAMA_CPP_GENERATION_FIELDS,
};

/** `POST /infill` (llama.cpp's own). */
export const LLAMA_CPP_INFILL_FIELDS: FieldTable = {
  input_prefix: honoured("the code before the cursor (text or ids); its end is kept"),
  input_suffix: honoured("the code after the cursor (text or ids); its start is kept"),
  input_extra: honoured(
    "files of the project, [{filename, text}], read first (as a repository with the model's tokens for it); their end is kept",
  ),
  prompt: honoured("text right before the cursor, after input_prefix, never cut"),
  ...LLAMA_CPP_GENERATION_FIELDS,
};

/** `POST /v1/rerank` (Jina's, Cohere's and llama.cpp's shape); other fields are ignored. */
export const RERANK_FIELDS: FieldTable = {
  model: honoured("the served model's id or one of its aliases; may be left out"),
  query: honoured("what the documents are judged against"),
  documents: honoured("texts, or objects with `text` (up to 1024)"),
  texts: honoured("the documents' other name (Hugging Face TEI's)"),
  top_n: honoured("only the n most relevant (default: all)"),
  return_documents: honoured("each result carries its document (default false)"),
  return_text: honoured("return_documents' other name (TEI's)"),
  instruction: honoured(
    "extension: the task the model judges by (default Qwen3-Reranker's: a web search query's passages)",
  ),
};

/** `POST /v1/score` (vLLM's); other fields are ignored. */
export const SCORE_FIELDS: FieldTable = {
  model: RERANK_FIELDS.model!,
  text_1: honoured("a query, or one per text_2"),
  text_2: honoured("the texts each scored against its query (up to 1024)"),
  instruction: RERANK_FIELDS.instruction!,
};

/** `POST /api/embed` (Ollama's). */
export const OLLAMA_EMBED_FIELDS: FieldTable = {
  model: OLLAMA_GENERATION_FIELDS.model!,
  input: honoured("a string or a list of strings (up to 2048)"),
  truncate: noEffect("an input is never cut: one past the context is a 400"),
  dimensions: honoured("the model's hidden size only (vectors are not cut)"),
  keep_alive: noEffect("the model stays loaded"),
  options: noEffect("embeddings take no options"),
};

/** `POST /api/embeddings` (Ollama's older embedding endpoint). */
export const OLLAMA_EMBEDDINGS_FIELDS: FieldTable = {
  model: OLLAMA_GENERATION_FIELDS.model!,
  prompt: honoured("a string"),
  keep_alive: noEffect("the model stays loaded"),
  options: noEffect("embeddings take no options"),
};
