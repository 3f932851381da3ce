import { readGguf } from "../formats/gguf.ts";
import { openFileSource } from "../storage/file_source.ts";
import { ggufTokenizer } from "./gguf_tokenizer.ts";
import { ggufToHfTokenizer } from "./gguf_to_hf.ts";
import { HfTokenizer } from "./hf_tokenizer.ts";
import { parseLlama2cTokenizer } from "./llama2c_tokenizer.ts";
import type { Tokenizer } from "./tokenizer.ts";

const GGUF_MAGIC = "GGUF";

async function readJsonIfPresent(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`Bad JSON in ${path}: ${(e as Error).message}`);
  }
}

function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
}

async function loadHf(path: string): Promise<HfTokenizer> {
  const folder = dirname(path);
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new SyntaxError(`Bad JSON in ${path}: ${(e as Error).message}`);
  }
  const config = await readJsonIfPresent(`${folder}/tokenizer_config.json`);
  const generation = await readJsonIfPresent(`${folder}/generation_config.json`);
  return new HfTokenizer(json, config, generation);
}

async function head(path: string, length: number): Promise<Uint8Array> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return buffer.subarray(0, filled);
}

/**
 * Loads a tokenizer from a path, recognised by content: a Hugging Face `tokenizer.json`
 * (with `tokenizer_config.json` and `generation_config.json` beside it when present), a
 * folder holding one, a llama2.c `tokenizer.bin`, or a GGUF model (its vocabulary only:
 * SentencePiece vocabularies encode as llama.cpp does, byte-level BPE ones through an
 * equivalent `tokenizer.json`).
 *
 * @param path file or folder
 * @returns the tokenizer
 * @throws {Deno.errors.NotFound} when the path does not exist
 * @throws {SyntaxError} when a JSON file is malformed
 * @throws {RangeError} when a binary tokenizer is truncated
 * @throws {TypeError} when the content is none of the supported kinds
 * @example
 * ```ts ignore
 * const tokenizer = await loadTokenizer("tok512.bin");
 * tokenizer.encode("Once upon a time"); // [1, 403, 407, 261, 378]
 * ```
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  const info = await Deno.stat(path);
  if (info.isDirectory) {
    const file = `${path.replace(/\/+$/, "")}/tokenizer.json`;
    try {
      await Deno.stat(file);
    } catch {
      throw new TypeError(`Folder ${path} holds no tokenizer.json`);
    }
    return await loadHf(file);
  }
  const start = await head(path, 64);
  if (new TextDecoder().decode(start.subarray(0, 4)) === GGUF_MAGIC) {
    const source = await openFileSource(path);
    let gguf;
    try {
      gguf = await readGguf(source);
    } finally {
      await source.close();
    }
    if (gguf.metadata.get("tokenizer.ggml.model") === "llama") return ggufTokenizer(gguf, path);
    const files = ggufToHfTokenizer(gguf, path);
    return new HfTokenizer(files.tokenizerJson, files.tokenizerConfig);
  }
  if (new TextDecoder().decode(start).trimStart().startsWith("{")) return await loadHf(path);
  try {
    return parseLlama2cTokenizer(await Deno.readFile(path), path);
  } catch (e) {
    throw new TypeError(
      `${path} is neither a tokenizer.json, a GGUF file nor a llama2.c tokenizer (${
        (e as Error).message
      })`,
    );
  }
}
