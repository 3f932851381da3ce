import { join } from "node:path";
import { openFileSource } from "../src/storage/file_source.ts";
import { fileUnder } from "./file_names.ts";
import type { ByteSource } from "../src/storage/byte_source.ts";
import {
  checkLayerCount,
  llamaConfigFromHf,
  llamaWeights,
  LM_HEAD_NAME,
  phi3Part,
} from "./llama.ts";
import {
  readSafetensors,
  readSafetensorsTensor,
  type SafetensorsEntry,
  type SafetensorsFile,
} from "../src/formats/safetensors.ts";
import type { LlamaConfig } from "./llama.ts";
import { type ExtraFile, f16BitsOf, type ModelSource, type SourceTensor } from "./source.ts";

/** Files of an HF folder copied into the archive when present. */
export const COPIED_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "generation_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
];

/** Whether `path` names a regular file (false when it does not exist). */
export async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new RangeError(`${path}: file not found`);
    throw e;
  }
  try {
    const json = JSON.parse(text);
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      throw new SyntaxError("not an object");
    }
    return json as Record<string, unknown>;
  } catch (e) {
    throw new SyntaxError(`${path}: invalid JSON: ${(e as Error).message}`);
  }
}

/** The safetensors files of a folder: from `model.safetensors.index.json`, else all of them. */
async function shardNames(
  folder: string,
): Promise<{ shards: string[]; map?: Map<string, string> }> {
  const indexPath = join(folder, "model.safetensors.index.json");
  if (await exists(indexPath)) {
    const index = await readJson(indexPath);
    const weightMap = index.weight_map;
    if (typeof weightMap !== "object" || weightMap === null) {
      throw new SyntaxError(`${indexPath}: missing 'weight_map'`);
    }
    const map = new Map<string, string>();
    for (const [tensor, shard] of Object.entries(weightMap as Record<string, unknown>)) {
      if (typeof shard !== "string") {
        throw new TypeError(
          `${indexPath}: weight_map['${tensor}'] is ${JSON.stringify(shard)}, not a file name`,
        );
      }
      map.set(tensor, shard);
    }
    const shards = [...new Set(map.values())].sort();
    for (const shard of shards) {
      const path = fileUnder(folder, shard, indexPath);
      if (!(await exists(path))) {
        throw new RangeError(`${path}: missing shard named in ${indexPath}`);
      }
    }
    return { shards, map };
  }
  const shards: string[] = [];
  for await (const entry of Deno.readDir(folder)) {
    if (entry.isFile && entry.name.endsWith(".safetensors")) shards.push(entry.name);
  }
  if (shards.length === 0) throw new RangeError(`${folder}: no *.safetensors file`);
  return { shards: shards.sort() };
}

/**
 * Opens a Hugging Face model folder: `config.json`, one or many safetensors files (with
 * `model.safetensors.index.json`), and the tokenizer files, which are carried into the archive.
 * Every header is read and checked before any tensor is.
 */
export async function openHfFolder(folder: string): Promise<ModelSource> {
  const configPath = join(folder, "config.json");
  const hfConfig = await readJson(configPath);
  const config = llamaConfigFromHf(hfConfig, configPath);
  const { shards, map } = await shardNames(folder);
  const sources: ByteSource[] = [];
  try {
    const files = new Map<string, SafetensorsFile>();
    for (const shard of shards) {
      const source = await openFileSource(join(folder, shard));
      sources.push(source);
      files.set(shard, await readSafetensors(source));
    }
    checkLayerCount(
      config,
      [...files.values()].flatMap((f) => [...f.tensors.keys()]),
      configPath,
    );
    const find = (name: string): [SafetensorsFile, SafetensorsEntry] | undefined => {
      const shard = map?.get(name);
      const candidates = shard === undefined ? [...files.values()] : [files.get(shard)!];
      for (const file of candidates) {
        const entry = file.tensors.get(name);
        if (entry !== undefined) return [file, entry];
      }
      return undefined;
    };
    const tensors = new Map<string, SourceTensor>();
    for (const spec of llamaWeights(config)) {
      if (spec.role === "rope") continue;
      const found = config.modelType === "phi3"
        ? findPart(spec.name, config, find)
        : find(spec.name);
      if (found === undefined) {
        const where = map?.get(spec.name) ?? shards.join(", ");
        throw new RangeError(`${folder}: tensor '${spec.name}' not found in ${where}`);
      }
      const [file, entry] = found;
      if (entry.shape.join(",") !== spec.shape.join(",")) {
        throw new RangeError(
          `${file.source.name}: tensor '${spec.name}' has shape [${
            entry.shape.join(", ")
          }], config.json implies [${spec.shape.join(", ")}]`,
        );
      }
      tensors.set(spec.name, {
        name: spec.name,
        shape: entry.shape,
        sourceType: entry.dtype === "F32" ? "f32" : entry.dtype === "F16" ? "f16" : "bf16",
        load: async () =>
          entry.dtype === "F16"
            ? { kind: "f16", bits: f16BitsOf(await file.source.read(entry.offset, entry.length)) }
            : { kind: "f32", values: await readSafetensorsTensor(file, entry) },
      });
    }
    if (!config.tieWordEmbeddings && !tensors.has(LM_HEAD_NAME)) {
      throw new RangeError(`${folder}: untied model without '${LM_HEAD_NAME}'`);
    }
    const extra: ExtraFile[] = [];
    for (const name of COPIED_FILES) {
      const path = join(folder, name);
      if (await exists(path)) extra.push({ name, bytes: await Deno.readFile(path) });
    }
    if (!extra.some((f) => f.name === "tokenizer.json")) {
      throw new RangeError(`${join(folder, "tokenizer.json")}: file not found`);
    }
    return {
      format: "hf",
      name: folder.replace(/\/+$/, "").split("/").pop() ?? "model",
      config,
      hfConfig,
      tensors,
      files: extra,
      close: async () => {
        for (const s of sources) await s.close();
      },
    };
  } catch (e) {
    for (const s of sources) await s.close();
    throw e;
  }
}

/**
 * The weight `name` from the folder: stored whole, or as its rows of one of Phi-3's fused
 * weights (`phi3Part`).
 */
function findPart(
  name: string,
  config: LlamaConfig,
  find: (name: string) => [SafetensorsFile, SafetensorsEntry] | undefined,
): [SafetensorsFile, SafetensorsEntry] | undefined {
  const part = phi3Part(name, config);
  if (part === undefined) return find(name);
  const found = find(part.fused);
  if (found === undefined) return undefined;
  const [file, entry] = found;
  if (entry.shape.length !== 2 || entry.shape[0] !== part.total) {
    throw new RangeError(
      `${file.source.name}: tensor '${part.fused}' has shape [${
        entry.shape.join(", ")
      }], config.json implies [${part.total}, ${config.hiddenSize}]`,
    );
  }
  const rowBytes = entry.length / part.total;
  return [file, {
    ...entry,
    name,
    shape: [part.rows, entry.shape[1]!],
    offset: entry.offset + part.start * rowBytes,
    length: part.rows * rowBytes,
  }];
}
