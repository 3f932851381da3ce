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
