/**
 * Rill: a streaming inference service for LLMs stored as tract-flavoured NNEF archives.
 *
 * @module
 */
export type { DType, TensorData } from "./src/tensor/dtype.ts";
export type { Tensor } from "./src/tensor/tensor.ts";
export type { ByteSource } from "./src/storage/byte_source.ts";
export type * from "./src/nnef/ast.ts";
export { parseDocument } from "./src/nnef/parse.ts";
export { parseQuant, type QuantSpec } from "./src/nnef/quant.ts";
export { formatRValue } from "./src/nnef/format.ts";
export {
  type AssertSummary,
  formatModelSummary,
  inspectModel,
  type IoSummary,
  type ModelSummary,
  type TensorTypeSummary,
} from "./src/nnef/inspect.ts";
export type { Tokenizer } from "./src/tokenizer/tokenizer.ts";
export { loadTokenizer } from "./src/tokenizer/load_tokenizer.ts";
export { HfTokenizer, type Json } from "./src/tokenizer/hf_tokenizer.ts";
export {
  type Llama2cPiece,
  Llama2cTokenizer,
  parseLlama2cTokenizer,
} from "./src/tokenizer/llama2c_tokenizer.ts";
export {
  GGUF_TOKEN_TYPE,
  ggufTokenizer,
  SpmTokenizer,
  type SpmVocab,
  spmVocabFromGguf,
} from "./src/tokenizer/gguf_tokenizer.ts";
export { bpeToHfTokenizer, ggufToHfTokenizer } from "./src/tokenizer/gguf_to_hf.ts";
export {
  type HfTokenizerFiles,
  llama2cToHfTokenizer,
  spmToHfTokenizer,
} from "./src/tokenizer/llama2c_to_hf.ts";
export {
  type ChatMessage,
  type ChatTemplateOptions,
  PLAIN_CHAT_TEMPLATE,
  readChatTemplate,
  renderChatTemplate,
} from "./src/engine/chat_template.ts";
export {
  GGML_TYPE,
  type GgmlTypeName,
  type GgufFile,
  type GgufTensorInfo,
  type GgufValue,
  readGguf,
} from "./src/formats/gguf.ts";
export {
  type Archive,
  type ArchiveMember,
  normalizeMemberName,
  openArchive,
  type OpenArchiveOptions,
} from "./src/nnef/archive.ts";
export { decodeTensor } from "./src/nnef/tensor_decode.ts";
export { encodeTensor, type EncodeTensorOptions } from "./src/nnef/tensor_encode.ts";
export {
  readTensorFile,
  readTensorHeader,
  type TensorFile,
  type TensorHeader,
  type TensorLayout,
  writeTensorFile,
} from "./src/nnef/tensor_file.ts";
export {
  dequantizeQ40,
  ggmlQ40ToLegacy,
  legacyQ40ToGgml,
  Q40_BLOCK_BYTES,
  Q40_BLOCK_LEN,
  quantizeQ40,
  type QuantizeQ40Options,
} from "./src/nnef/q40.ts";
export {
  indexTar,
  type TarEntry,
  tarEntryHeader,
  type TarWriteEntry,
  type TarWriteOptions,
  writeTar,
} from "./src/nnef/tar.ts";
export { openFileSource } from "./src/storage/file_source.ts";
export { memorySource } from "./src/storage/memory_source.ts";
export {
  type HttpSource,
  type HttpSourceOptions,
  openHttpSource,
} from "./src/storage/http_source.ts";
export { redactUrl } from "./src/storage/redact.ts";
export { ARCHIVE_INDEX_MEMBER, type ArchiveIndexEntry } from "./src/nnef/archive_index.ts";
export type {
  LoaderOptions,
  LoaderStats,
  LoadTarget,
  MemberLoader,
  MemberLoadOptions,
} from "./src/nnef/loader.ts";
export {
  archiveStream,
  type ArchiveStreamOptions,
  type ModelStreamOptions,
  openModelStream,
} from "./src/nnef/model_stream.ts";
export { type MemberClaim, type ModelStream } from "./src/nnef/member_stream.ts";
export { openS3Source, s3HttpUrl, type S3Options } from "./src/storage/s3.ts";
export { type DiskCache, type MemberCacheKey, openDiskCache } from "./src/storage/disk_cache.ts";
export { f16ToF32, f32ToF16 } from "./src/tensor/f16.ts";
export {
  type AttentionShape,
  type KernelOps,
  Kernels,
  type KernelVariant,
  loadKernels,
  type LoadKernelsOptions,
  type Q4Layout,
  selfTest,
  ThreadPolicy,
  type ThreadPolicyOptions,
  WASM32_MAX_BYTES,
  type WeightSlot,
} from "./kernels/mod.ts";
export { type Q4Matrix, type Q4Tuning, tileSpeedups, tuneQ4 } from "./kernels/q4_tuning.ts";
export { buildModel } from "./src/graph/build_model.ts";
export { type GraphIO, type Node, type Value } from "./src/graph/graph.ts";
export { loadModel, type LoadOptions } from "./src/graph/load_model.ts";
export { type LoadStats, Model } from "./src/graph/model.ts";
export {
  Executor,
  type ExecutorOptions,
  type Pause,
  type RunOptions,
} from "./src/graph/executor.ts";
export type { StepReplay } from "./src/graph/replay.ts";
export { type FusedCall, type NodeOverride } from "./src/graph/steps.ts";
export { fuseGraph, type FuseOptions, type Fusion, type FusionKind } from "./src/graph/fuse.ts";
export { closeSharedKernels, sharedKernels } from "./src/engine/shared_kernels.ts";
export {
  type MemoryLimit,
  type MemoryLimitOptions,
  parseByteSize,
  readMemoryLimit,
} from "./src/engine/memory_limit.ts";
export {
  fixedOverheadBytes,
  kvBytesPerPosition,
  type MemoryNeeds,
  type MemoryPlan,
  planMemory,
} from "./src/engine/memory_budget.ts";
export { kernelLinears } from "./src/graph/kernel_linear.ts";
export {
  type Assertion,
  checkAssertion,
  parseAssertion,
  parseDim,
} from "./src/tensor/dim_parse.ts";
export { type Bindings, type Dim, DimExpr, evalDim } from "./src/tensor/dim.ts";
export type { EvalContext, Fact, InferContext, Op, OpArgs } from "./src/ops/op.ts";
export { findOp, OPS } from "./src/ops/mod.ts";
export {
  type CachePair,
  createSession,
  findCachePairs,
  Session,
  type SessionOptions,
} from "./src/engine/session.ts";
export { generate, type GenerationOptions } from "./src/engine/generate.ts";
export { StopMatcher } from "./src/engine/stop.ts";
export { IncrementalDetokenizer } from "./src/engine/detokenizer.ts";
export {
  type ChatRenderOptions,
  type FinishReason,
  type GenerateOptions,
  type GenerationEvent,
  InferenceService,
  type InferenceServiceOptions,
  type TokenModel,
} from "./src/engine/service.ts";
export {
  type LoadedService,
  loadService,
  type LoadServiceOptions,
  modelScheduler,
  type ModelSchedulerOptions,
} from "./src/engine/load_service.ts";
export { QueueFullError, type QueueTicket, RequestQueue } from "./src/scheduler/queue.ts";
export {
  BatchScheduler,
  KvBudgetError,
  type SchedulerOptions,
  type SchedulerStats,
  type SequenceKind,
  type SequenceOutcome,
  type SequenceRequest,
  type SequenceRun,
  type SlotState,
  type StepModel,
  type StepPool,
  type StepSequence,
} from "./src/scheduler/step_loop.ts";
export { digestYield, type IoYield, LoopbackYield } from "./src/scheduler/io_turn.ts";
export { PrefixCache } from "./src/scheduler/prefix_cache.ts";
export { BlockTable, KvPool, type KvPoolOptions } from "./src/scheduler/kv_pool.ts";
export { ServingMetrics } from "./src/scheduler/metrics.ts";
export {
  type App,
  createApp,
  type JobTicket,
  type ServingConfig,
  ServingState,
} from "./routes/mod.ts";
export {
  DEFAULT_MODEL,
  type ResolvedModel,
  resolveModel,
  type ResolveOptions,
} from "./models/resolve.ts";
export { convertModel } from "./models/convert.ts";
export type { ConvertOptions, ConvertProgress, ConvertResult } from "./models/convert.ts";
export type { ArchiveIndex } from "./src/nnef/archive_writer.ts";
export {
  createServer,
  readServeConfig,
  type ServeConfig,
  serveFromEnv,
  type Server,
} from "./cli/serve.ts";

export type { Args } from "./src/ops/args.ts";
export type { Graph, NodeArg } from "./src/graph/graph.ts";
export type { BuildOptions } from "./src/graph/build_model.ts";
export type { Step } from "./src/graph/steps.ts";
export type { RowAxis } from "./src/graph/row_axes.ts";
export type { FusionCounts } from "./src/graph/fuse.ts";
export type { Comparison } from "./src/tensor/dim_parse.ts";
export type { Term } from "./src/tensor/dim.ts";
export { DTYPES } from "./src/tensor/dtype.ts";
export type { PagedKv, PagedTensor } from "./src/tensor/paged.ts";
export type { IndexTarOptions, TarIndex } from "./src/nnef/tar.ts";
export type { MemberProgress } from "./src/nnef/deadline.ts";
export type { LocationOptions } from "./src/storage/location.ts";
export type { CacheLayout, KvItemType } from "./src/scheduler/kv_pool.ts";
export type {
  KernelHost,
  KvItem,
  MatmulTarget,
  Ops,
  PagedAttentionCall,
  PagedAttentionShape,
} from "./kernels/mod.ts";
export type { ArenaHost, ArenaRoots, RunArena } from "./kernels/mod.ts";
export type {
  MirostatOptions,
  SamplingOptions,
  TokenLogprob,
  Weigh,
} from "./src/engine/sampler.ts";
export { kernelWeigh } from "./src/engine/kernel_weigh.ts";
export type { DryOptions } from "./src/engine/dry.ts";
export {
  ReasoningParser,
  type ReasoningPiece,
  type ReasoningStart,
  reasoningStart,
  type ThinkingMarkers,
} from "./src/engine/reasoning.ts";
export type { TokenConstraint, VocabGrammar } from "./src/engine/constrain/constraint.ts";
export type { Grammar, Term as GrammarTerm } from "./src/engine/constrain/grammar.ts";
export type { ToolFamily, ToolFunction } from "./src/engine/tool_calls.ts";
export type { LoadProgress } from "./src/engine/load_service.ts";
export type { WeightDType } from "./models/llama.ts";

export type { AliasStep } from "./src/graph/steps.ts";
export type { Atom } from "./src/tensor/dim.ts";
export type { AttrTemplate } from "./src/graph/graph.ts";
export type { Automaton } from "./src/engine/constrain/automaton.ts";
export type { ByteClass } from "./src/engine/constrain/grammar.ts";
export type { ConstraintStats } from "./src/engine/constrain/constraint.ts";
export type { DimsStep } from "./src/graph/steps.ts";
export type { FusedStep } from "./src/graph/steps.ts";
export type { NodeStep } from "./src/graph/steps.ts";
export type { VocabTrie } from "./src/engine/constrain/vocab_trie.ts";

export type { AttrValue } from "./src/ops/args.ts";

import { createServer, readServeConfig, serveFromEnv, type Server } from "./cli/serve.ts";
import { catchStrayErrors, errorMessage } from "./cli/top_level.ts";

/** Started at once when this module is what `deno serve` (or Deno Deploy) runs. */
let defaultServer: Server | undefined = import.meta.main ? serveFromEnv() : undefined;

/**
 * The HTTP service as `deno serve mod.ts` and Deno Deploy run it, configured from the
 * environment (`MODEL`, `RILL_API_KEYS`, ... as `deno task serve --help` lists). Run that way,
 * it checks its permissions and starts loading the model at once, and drains on SIGINT or
 * SIGTERM; re-exported by another entry module, it starts with the first request.
 */
const server: Deno.ServeDefaultExport = {
  fetch(request: Request, info: Deno.ServeHandlerInfo): Response | Promise<Response> {
    if (defaultServer === undefined) {
      // This process is the server: an error nothing handled is logged, never fatal.
      catchStrayErrors("rill serve", { keepRunning: true });
      const config = readServeConfig([], (name) => Deno.env.get(name));
      // Kernel worker threads would keep the process alive after `deno serve` shuts down.
      defaultServer = createServer({ ...config, threads: config.threads ?? 1 });
      defaultServer.loaded.catch((e) => console.error(`rill: ${errorMessage(e)}`));
    }
    return defaultServer.fetch(request, info);
  },
};

export default server;
