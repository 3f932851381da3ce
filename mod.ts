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
export type { Tokenizer } from "./src/engine/tokenizer.ts";
export { loadTokenizer } from "./src/engine/load_tokenizer.ts";
export { HfTokenizer } from "./src/engine/hf_tokenizer.ts";
export { Llama2cTokenizer, parseLlama2cTokenizer } from "./src/engine/llama2c_tokenizer.ts";
export { ggufTokenizer, SpmTokenizer, type SpmVocab } from "./src/engine/gguf_tokenizer.ts";
export {
  type HfTokenizerFiles,
  llama2cToHfTokenizer,
  spmToHfTokenizer,
} from "./src/engine/llama2c_to_hf.ts";
export {
  type ChatMessage,
  type ChatTemplateOptions,
  PLAIN_CHAT_TEMPLATE,
  readChatTemplate,
  renderChatTemplate,
} from "./src/engine/chat_template.ts";
export {
  GGML_TYPE,
  type GgufFile,
  type GgufTensorInfo,
  type GgufValue,
  readGguf,
} from "./models/gguf.ts";
