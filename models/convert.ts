import { join } from "node:path";
import { ggufToHfTokenizer } from "../src/tokenizer/gguf_to_hf.ts";
import { llama2cToHfTokenizer } from "../src/tokenizer/llama2c_to_hf.ts";
import { parseLlama2cTokenizer } from "../src/tokenizer/llama2c_tokenizer.ts";
import { readsEagerly } from "../src/graph/weights.ts";
import { quantizeQ40 } from "../src/nnef/q40.ts";
import {
  TENSOR_HEADER_BYTES,
  TRACT_CODES,
  TRACT_VENDOR,
  VARIABLE_BITS,
  writeTensorFile,
} from "../src/nnef/tensor_file.ts";
import { f16ArrayToF32, f16ToF32, f32ArrayToF16, f32ToF16 } from "../src/tensor/f16.ts";
import { type ArchiveIndex, type ArchiveMember, writeArchive } from "../src/nnef/archive_writer.ts";
import { openGguf } from "./gguf_model.ts";
import { openHfFolder } from "./hf.ts";
import { buildLlamaGraph } from "./llama_graph.ts";
import {
  EMBED_NAME,
  type LlamaConfig,
  llamaWeights,
  LM_HEAD_NAME,
  LOCAL_INV_FREQ_NAME,
  ropeInverseFrequencies,
  type WeightDType,
  type WeightSpec,
} from "./llama.ts";
import { openLlama2c } from "./llama2c.ts";
import type { ExtraFile, LoadedTensor, ModelSource } from "./source.ts";
import { jsonBytes, tokenizerFiles } from "./tokenizer_files.ts";

/**
 * Bumped whenever the archive written for the same input and options changes, so that the
 * cache of converted models (`resolve.ts`) converts again. 2: Q4_0 token embeddings.
 */
export const CONVERTER_VERSION = 2;

/** Options of `convertModel`. */
export interface ConvertOptions {
  /** llama2.c `tokenizer.bin` (required for a llama2.c checkpoint). */
  readonly tokenizer?: string;
  /**
   * Store every linear weight and the token embedding whose rows are a multiple of 32 long as
   * Q4_0 (as llama.cpp's Q4_0 files do): a tied classifier then reads 4.5 bits a weight.
   */
  readonly q40?: boolean;
  /**
   * With `q40`, keep the token embedding in `dtype`, as torch_to_nnef's Q4_0 exports do
   * (default false).
   */
  readonly floatEmbedding?: boolean;
  /**
   * Storage of the other matrices (embeddings, linear weights not in Q4_0). Default: f16 when
   * the input stores its matrices in 16 bits, else f32. Norms and biases stay f32.
   */
  readonly dtype?: "f32" | "f16";
  /** Called after each member is written. */
  readonly onProgress?: (progress: ConvertProgress) => void;
}

/** Progress of a conversion. */
export interface ConvertProgress {
  /** Weights written so far. */
  readonly tensorsDone: number;
  /** Weights in the archive. */
  readonly tensorsTotal: number;
  /** Archive bytes written so far. */
  readonly bytesDone: number;
  /** Size of the finished archive. */
  readonly bytesTotal: number;
}

/** What `convertModel` wrote. */
export interface ConvertResult {
  /** Path of the archive written. */
  readonly output: string;
  /** Input kind: `llama2c`, `hf` or `gguf`. */
  readonly format: string;
  /** The content of `rill-index.json`. */
  readonly index: ArchiveIndex;
  /** Storage type of each weight, by HF name. */
  readonly dtypes: ReadonlyMap<string, WeightDType>;
}

async function sniff(path: string): Promise<"hf" | "gguf" | "llama2c"> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new RangeError(`${path}: input not found`);
    throw e;
  }
  if (info.isDirectory) return "hf";
  using file = await Deno.open(path);
  const magic = new Uint8Array(4);
  const n = await file.read(magic);
  if (n === 4 && new TextDecoder().decode(magic) === "GGUF") return "gguf";
  return "llama2c";
}

/** Opens any supported input: an HF folder, a GGUF file, or a llama2.c checkpoint. */
async function openModelSource(
  input: string,
  options: Pick<ConvertOptions, "tokenizer"> = {},
): Promise<ModelSource> {
  const kind = await sniff(input);
  if (kind === "hf") return await openHfFolder(input);
  if (kind === "gguf") {
    const { model, gguf } = await openGguf(input);
    try {
      return {
        ...model,
        files: tokenizerFiles(ggufToHfTokenizer(gguf, input), model.config.maxPositions),
      };
    } catch (e) {
      await model.close();
      throw e;
    }
  }
  if (options.tokenizer === undefined) {
    throw new RangeError(`${input}: a llama2.c checkpoint needs --tokenizer tokenizer.bin`);
  }
  const tokenizer = await Deno.readFile(options.tokenizer);
  const model = await openLlama2c(input);
  try {
    const parsed = parseLlama2cTokenizer(tokenizer, options.tokenizer);
    // The file does not say how many tokens it holds: a cut at a token boundary reads well.
    if (parsed.vocabSize !== model.config.vocabSize) {
      throw new RangeError(
        `${options.tokenizer}: ${parsed.vocabSize} tokens, the checkpoint ${input} has a ` +
          `vocabulary of ${model.config.vocabSize}`,
      );
    }
    const hf = llama2cToHfTokenizer(parsed);
    const files = tokenizerFiles(hf, model.config.maxPositions);
    return { ...model, files };
  } catch (e) {
    await model.close();
    throw e;
  }
}

/**
 * Refuses an output path that names a folder, or a file the conversion reads (`inputs`, and the
 * files of an input folder): the archive, renamed into place at the end, would replace it.
 */
async function checkOutput(output: string, inputs: readonly string[]): Promise<void> {
  const target = await statOrNull(output);
  if (target === null) return;
  if (target.isDirectory) {
    throw new TypeError(
      `Output '${output}' is a folder; name the archive to write, e.g. '${
        join(output, "model.nnef.tar")
      }'`,
    );
  }
  for (const input of inputs) {
    const info = await statOrNull(input);
    if (info === null) continue;
    const files = info.isDirectory ? await filesOf(input) : [input];
    for (const file of files) {
      const read = file === input ? info : await statOrNull(file);
      if (read !== null && read.dev === target.dev && read.ino === target.ino) {
        throw new TypeError(
          `Output '${output}' is the input file '${file}': writing it would replace what is converted`,
        );
      }
    }
  }
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

async function filesOf(folder: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(folder)) out.push(join(folder, entry.name));
  return out;
}

function payloadBytes(dtype: WeightDType, shape: readonly number[]): number {
  const n = shape.reduce((a, b) => a * b, 1);
  return dtype === "q40" ? (n / 32) * 18 : dtype === "f16" ? 2 * n : 4 * n;
}

/** Storage type of each weight under the options (see `ConvertOptions`). */
function planDtypes(
  model: ModelSource,
  options: Pick<ConvertOptions, "q40" | "dtype" | "floatEmbedding">,
): Map<string, WeightDType> {
  const matrices = [...model.tensors.values()].filter((t) => t.shape.length === 2);
  const narrow = matrices.length > 0 &&
    matrices.every((t) => t.sourceType === "f16");
  const dtype = options.dtype ?? (narrow ? "f16" : "f32");
  const out = new Map<string, WeightDType>();
  for (const spec of llamaWeights(model.config)) {
    const source = model.tensors.get(spec.name);
    if (source?.sourceType === "q40") {
      out.set(spec.name, "q40");
    } else if (
      (spec.role === "linear" || (spec.role === "embedding" && options.floatEmbedding !== true)) &&
      options.q40 === true && spec.shape[1]! % 32 === 0
    ) {
      out.set(spec.name, "q40");
    } else if (spec.role === "linear" || spec.role === "embedding") {
      out.set(spec.name, dtype);
    } else {
      out.set(spec.name, "f32");
    }
  }
  const linear = llamaWeights(model.config).filter((spec) => spec.role === "linear");
  if (options.q40 === true && linear.every((spec) => out.get(spec.name) !== "q40")) {
    const sizes = [...new Set(linear.map((spec) => spec.shape[1]!))].sort((a, b) => a - b);
    throw new RangeError(
      `--q40: no linear weight has an input size that is a multiple of 32 (they have ${
        sizes.join(", ")
      }), so nothing would be stored as Q4_0; convert without --q40`,
    );
  }
  return out;
}

function bytesOf(view: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * The `.dat` of a weight as its 128-byte header and its payload, without copying the payload
 * (floats are little-endian on every target, as tract assumes). Headers are the ones
 * torch_to_nnef writes: Khronos float codes, tract Q4_0 0x3040 with the full logical shape.
 */
function datChunks(spec: WeightSpec, dtype: WeightDType, loaded: LoadedTensor): Uint8Array[] {
  let payload: Uint8Array;
  if (loaded.kind === "q40") {
    if (dtype !== "q40") throw new TypeError(`Weight '${spec.name}' is Q4_0 in the input`);
    payload = loaded.blocks;
  } else if (loaded.kind === "f16" && dtype === "f16") {
    payload = bytesOf(loaded.bits);
  } else {
    const values = loaded.kind === "f16" ? f16ArrayToF32(loaded.bits) : loaded.values; // (n,)
    if (dtype === "q40") payload = quantizeQ40(values, { rule: "torch_to_nnef" });
    else if (dtype === "f16") payload = bytesOf(f32ArrayToF16(values));
    else payload = bytesOf(values);
  }
  const q40 = dtype === "q40";
  const header = writeTensorFile({
    header: {
      version: [1, 0],
      dataLength: payload.length,
      rank: spec.shape.length,
      dims: [...spec.shape],
      bitsPerItem: q40 ? VARIABLE_BITS : dtype === "f16" ? 16 : 32,
      itemType: q40 ? TRACT_CODES.q40 : 0,
      vendor: q40 ? TRACT_VENDOR : 0,
      dtype,
      layout: q40 ? "q40" : "plain",
      reserved: new Uint8Array(TENSOR_HEADER_BYTES - 52),
    },
    payload: new Uint8Array(0),
  });
  return [header, payload];
}

/**
 * A weight as the graph uses it, with what the model applies to it folded in: a norm's offset
 * (Gemma's 1 + w), Granite's residual multiplier on the outputs of attention and MLP, and its
 * logits' divisor on the classifier (the tied embedding's too; the graph scales the embeddings
 * back), and LongRoPE's attention factor on the turned rows of q and k.
 */
function folded(spec: WeightSpec, config: LlamaConfig, loaded: LoadedTensor): LoadedTensor {
  const offset = spec.role === "norm" ? config.normOffset ?? 0 : 0;
  const residual = /\.(self_attn\.o_proj|mlp\.down_proj)\.weight$/.test(spec.name);
  const classifier = spec.name === LM_HEAD_NAME ||
    (spec.name === EMBED_NAME && config.tieWordEmbeddings);
  const factor = residual
    ? config.residualScale ?? 1
    : classifier
    ? 1 / (config.logitScale ?? 1)
    : 1;
  const turned = /\.self_attn\.[qk]_proj\.(weight|bias)$/.test(spec.name)
    ? config.ropeAttentionFactor ?? 1
    : 1;
  if (offset === 0 && factor === 1 && turned === 1) return loaded;
  // Rows of q and k by head: the leading rotary dims of each take the attention factor.
  const rotary = config.rotaryDim ?? config.headDim;
  const rowFactor = turned === 1
    ? () => factor
    : (row: number) => (row % config.headDim < rotary ? factor * turned : factor);
  if (loaded.kind === "q40") {
    if (offset !== 0) {
      throw new RangeError(`${spec.name}: Q4_0 blocks carried over cannot take a norm's offset`);
    }
    return scaledRows(loaded.blocks, spec, rowFactor);
  }
  const values = loaded.kind === "f16" ? f16ArrayToF32(loaded.bits) : loaded.values; // (n,)
  const cols = spec.shape.length === 2 ? spec.shape[1]! : 1;
  return {
    kind: "f32",
    values: values.map((v, i) => Math.fround((v + offset) * rowFactor(Math.floor(i / cols)))),
  };
}

/**
 * Q4_0 blocks with each row times its factor: a block's values are its scale times fixed
 * integers, so the scale alone takes it (rounded to f16).
 */
function scaledRows(
  blocks: Uint8Array,
  spec: WeightSpec,
  rowFactor: (row: number) => number,
): LoadedTensor {
  const out = blocks.slice();
  const rowBytes = (spec.shape[1]! / 32) * 18;
  for (let row = 0; row < spec.shape[0]!; row++) {
    const factor = rowFactor(row);
    if (factor === 1) continue;
    for (let at = row * rowBytes; at < (row + 1) * rowBytes; at += 18) {
      const d = f32ToF16(f16ToF32(out[at]! | (out[at + 1]! << 8)) * factor);
      out[at] = d & 0xff;
      out[at + 1] = d >> 8;
    }
  }
  return { kind: "q40", blocks: out };
}

function member(name: string, bytes: Uint8Array): ArchiveMember {
  return { name, size: bytes.length, produce: () => bytes };
}

/**
 * Converts a model (HF folder, GGUF file, or llama2.c checkpoint with `options.tokenizer`)
 * into an uncompressed `.nnef.tar`: `rill-index.json` first, then `graph.nnef`, the JSON
 * members (`config.json`, tokenizer files), then one `.dat` per weight labelled with its HF
 * name: the small ones the runtime reads whole before building the graph (norms, biases), then
 * the large ones in the order the graph first uses them, so that the archive, gzip'd and
 * streamed once, is built early and runs its first layers while the rest arrives. The output
 * appears only once complete.
 *
 * @param input folder or file
 * @param output path of the `.nnef.tar` to write
 * @throws {TypeError} for an unsupported architecture or tensor type, an output that is a
 * folder or one of the files read
 * @throws {RangeError} for inconsistent or truncated input, or `q40` when no linear weight can
 * be stored as Q4_0
 * @throws {SyntaxError} for malformed JSON or headers
 * @example
 * ```ts ignore
 * await convertModel("stories260K.bin", "stories260K.nnef.tar", { tokenizer: "tok512.bin" });
 * await convertModel("SmolLM2-135M/", "smollm2.nnef.tar", { q40: true });
 * ```
 */
export async function convertModel(
  input: string,
  output: string,
  options: ConvertOptions = {},
): Promise<ConvertResult> {
  await checkOutput(output, [
    input,
    ...(options.tokenizer === undefined ? [] : [options.tokenizer]),
  ]);
  const model = await openModelSource(input, options);
  try {
    const dtypes = planDtypes(model, options);
    const specs = llamaWeights(model.config);
    const graph = buildLlamaGraph(model.config, {
      dtypes,
      properties: [
        ["converter", "rill convert"],
        ["source_format", model.format],
        ["name_or_path", model.name],
        ["hf_model_type", model.config.modelType],
        [
          "n_parameters",
          String(
            specs.filter((s) => s.role !== "rope")
              .reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0),
          ),
        ],
        ["compression", options.q40 === true ? "q4_0" : "none"],
      ],
    });
    const files: ExtraFile[] = [
      { name: "graph.nnef", bytes: new TextEncoder().encode(graph) },
      { name: "config.json", bytes: jsonBytes(model.hfConfig) },
      ...model.files.filter((f) => f.name !== "config.json"),
    ];
    const members: ArchiveMember[] = files.map((f) => member(f.name, f.bytes));
    const small = specs.filter((s) => readsEagerly(s.shape));
    const large = specs.filter((s) => !readsEagerly(s.shape));
    for (const spec of [...small, ...large]) {
      const dtype = dtypes.get(spec.name)!;
      members.push({
        name: `${spec.name}.dat`,
        size: 128 + payloadBytes(dtype, spec.shape),
        produce: async () => {
          const loaded: LoadedTensor = spec.role === "rope"
            ? {
              kind: "f32",
              values: ropeInverseFrequencies(
                model.config,
                spec.name === LOCAL_INV_FREQ_NAME ? model.config.localRopeTheta : undefined,
              ),
            }
            : folded(spec, model.config, await model.tensors.get(spec.name)!.load());
          return datChunks(spec, dtype, loaded);
        },
      });
    }
    const index = await writeArchive(output, members, (p) => {
      options.onProgress?.({
        tensorsDone: Math.max(0, p.membersDone - files.length),
        tensorsTotal: specs.length,
        bytesDone: p.bytesDone,
        bytesTotal: p.bytesTotal,
      });
    });
    return { output, format: model.format, index, dtypes };
  } finally {
    await model.close();
  }
}
